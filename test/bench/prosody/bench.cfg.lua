-- Prosody configuration for the load bench (test/bench/run-compare.sh fills in @DIR@ and @PORT@).
-- Loopback only, data in a temp dir, settings matched to the Starling bench configuration:
-- plain TCP allowed (STARTTLS offered, not required), PLAIN without TLS allowed, internal
-- storage, SCRAM-SHA-1 hashed passwords with 4096 iterations, no s2s, log level info to a file.
daemonize = false
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
admins = { }
plugin_paths = { }

modules_enabled = {
	"saslauth"; -- SASL (PLAIN, SCRAM-SHA-1)
	"tls"; -- STARTTLS
	"disco";
	"ping";
	"roster"; -- loaded implicitly anyway when a session sends initial presence
	-- @MAM_MODULE@ (the prosodymam variant: "mam")
}
modules_disabled = { "s2s"; "s2s_auth_certs"; "offline" }

c2s_ports = { @PORT@ }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true

authentication = "internal_hashed"
default_iteration_count = 4096
storage = "internal"

log = {
	{ levels = { min = "info" }, to = "file", filename = "@DIR@/prosody.log" };
}

-- @MAM_OPTIONS@ (the prosodymam variant: every message archived, in the internal storage)

certificates = "@DIR@/certs"

VirtualHost "localhost"
	ssl = { certificate = "@DIR@/certs/localhost.crt"; key = "@DIR@/certs/localhost.key" }

-- The MUC fan-out run (muc.bench.ts): one room, no history, no limits beyond Prosody's defaults.
Component "conference.localhost" "muc"

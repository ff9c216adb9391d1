-- Static s2s routes for the interop tests (conformance/prosody/s2s.test.ts), written for them:
-- Prosody 0.12 finds a remote server only through DNS (SRV, then A/AAAA on 5269), and the test
-- domains (starling.localhost on a free loopback port) are in no DNS. Configure
--
--   test_s2s_routes = { ["starling.localhost"] = { "127.0.0.1", 15269 } }
--
-- mod_s2s asks net.resolvers.service for each new outgoing connection; for a routed domain
-- this hands it a fixed target instead (an empty list for the direct TLS lookup, so only the
-- STARTTLS target is tried). Domains without a route resolve as before.
module:set_global();

local service = require "net.resolvers.service";
local basic = require "net.resolvers.basic";
local manual = require "net.resolvers.manual";

local routes = module:get_option("test_s2s_routes", {});
local dns_new = service.new;

service.new = function (hostname, srv_name, conn_type, extra)
	local route = routes[hostname];
	if route and (srv_name == "xmpp-server" or srv_name == "xmpps-server") then
		if srv_name == "xmpps-server" then
			return manual.new({}, conn_type, extra);
		end
		module:log("debug", "s2s route for %s: %s port %d", hostname, route[1], route[2]);
		return basic.new(route[1], route[2], conn_type, extra);
	end
	return dns_new(hostname, srv_name, conn_type, extra);
end

function module.unload()
	service.new = dns_new;
end

for host, route in pairs(routes) do
	module:log("info", "static s2s route: %s -> %s port %d", host, route[1], route[2]);
end

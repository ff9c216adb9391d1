// Table types for Kysely. Times are integer milliseconds since the epoch; binary values are
// base64 text, so one query runs unchanged on SQLite and PostgreSQL.
export interface SchemaMigrationTable {
  component: string;
  version: number;
  name: string;
  applied_at: number;
}

export interface AccountTable {
  host: string;
  username: string;
  created_at: number;
  /** When an administrator disabled the account (it cannot log in); null while it is enabled. */
  disabled_at: number | null;
}

/** One row per SCRAM hash (sha1, sha256): what the server needs to verify, never the password. */
export interface AccountCredentialTable {
  host: string;
  username: string;
  mechanism: string;
  salt: string;
  iterations: number;
  stored_key: string;
  server_key: string;
}

/** Per-user key/value rows for small module state (FAST tokens, settings). */
export interface UserDataTable {
  host: string;
  username: string;
  store: string;
  key: string;
  value: string;
  expires_at: number | null;
}

export interface Database {
  schema_migration: SchemaMigrationTable;
  account: AccountTable;
  account_credential: AccountCredentialTable;
  user_data: UserDataTable;
}

// TOML file -> one validated, typed configuration. Every problem is reported with the file,
// the key path and what was expected, and nothing starts until the whole file is clean.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { ConfigSchema, HostOptions, type Config } from './schema.js';
import { prepareDomain, PrecisError } from '../precis.js';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`configuration ${file}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** A module's option schema, as the loader needs it. */
export interface ModuleSchemas {
  names(): string[];
  has(name: string): boolean;
  schema(name: string): z.ZodType | undefined;
}

export interface LoadedConfig extends Config {
  /** Where the configuration came from ('(defaults)' when no file). */
  file: string;
  /** Absolute data directory. */
  dataDir: string;
  /** Each served domain (prepared) with its effective options, module options validated. */
  hostOptions: Map<string, HostOptions>;
}

/** The file to read: the explicit path, STARLING_CONFIG, ./config.toml, or none (defaults). */
export function resolveConfigPath(explicit?: string): string | undefined {
  if (explicit) return explicit;
  if (process.env.STARLING_CONFIG) return process.env.STARLING_CONFIG;
  return existsSync('config.toml') ? 'config.toml' : undefined;
}

export function loadConfig(explicitPath?: string, modules?: ModuleSchemas): LoadedConfig {
  const file = resolveConfigPath(explicitPath);
  if (!file) return validateConfig({}, '(defaults)', modules);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  return parseConfigText(text, file, modules, path.dirname(path.resolve(file)));
}

/** `baseDir`: what relative paths in the file are relative to (the file's directory). */
export function parseConfigText(text: string, file: string, modules?: ModuleSchemas, baseDir?: string): LoadedConfig {
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError(file, [`line ${err.line}, column ${err.column}: ${err.message.split('\n')[0]}`]);
    }
    throw err;
  }
  return validateConfig(raw, file, modules, baseDir);
}

/**
 * `baseDir`: the directory relative paths (data_dir, storage.sqlite_path, tls.certificates_dir,
 * s2s.ca_files, certificate and key) are resolved against: the configuration file's, so a
 * command run from another directory uses the same files; the current directory without a file.
 */
export function validateConfig(raw: Record<string, unknown>, file: string, modules?: ModuleSchemas, baseDir = process.cwd()): LoadedConfig {
  const problems: string[] = [];
  const resolved = resolveEnv(raw, [], problems) as Record<string, unknown>;
  const parsed = ConfigSchema.safeParse(resolved);
  // A variable that is not set explains the empty value the schema may then refuse: both are said.
  if (!parsed.success) throw new ConfigError(file, [...problems, ...describeIssues(parsed.error, [], resolved)]);
  const config = parsed.data;

  const hostOptions = new Map<string, HostOptions>();
  const globalRaw = pickHostOptions(resolved);
  for (const [name, overrides] of Object.entries(config.hosts)) {
    const where = ['hosts', name];
    let domain: string;
    try {
      domain = prepareDomain(name);
    } catch (err) {
      problems.push(`${keyPath(where)}: not a valid domain (${(err as PrecisError).message})`);
      continue;
    }
    const merged = HostOptions.safeParse(deepMerge(globalRaw, overrides));
    if (!merged.success) {
      problems.push(...describeIssues(merged.error, where, overrides));
      continue;
    }
    if (modules) checkModules(merged.data, overrides.modules === undefined ? [] : where, modules, problems);
    hostOptions.set(domain, merged.data);
  }
  for (const name of Object.keys(config.components)) {
    if (hostOptions.has(prepareDomain(name))) problems.push(`${keyPath(['components', name])}: ${name} is a host of this server; a component needs a domain of its own`);
  }
  if (hostOptions.size === 0 && problems.length === 0) problems.push('hosts: at least one host is needed');
  if (config.storage.driver === 'postgres' && !config.storage.postgres_url) {
    problems.push('storage.postgres_url: required when storage.driver = "postgres" (a URL, or "env:NAME")');
  }
  if (problems.length) throw new ConfigError(file, problems);
  resolvePaths(config, hostOptions, baseDir);
  return { ...config, file, dataDir: config.data_dir, hostOptions };
}

/** Makes the configured paths absolute, relative to `baseDir`; empty means unset and stays. */
function resolvePaths(config: Config, hostOptions: Map<string, HostOptions>, baseDir: string): void {
  const resolve = (p: string) => (p === '' || p === ':memory:' ? p : path.resolve(baseDir, p));
  config.data_dir = resolve(config.data_dir);
  config.storage.sqlite_path = resolve(config.storage.sqlite_path);
  config.tls.certificates_dir = resolve(config.tls.certificates_dir);
  config.s2s.ca_files = config.s2s.ca_files.map(resolve);
  config.acme.ca_file = resolve(config.acme.ca_file);
  config.certificate = resolve(config.certificate);
  config.key = resolve(config.key);
  for (const options of hostOptions.values()) {
    options.certificate = resolve(options.certificate);
    options.key = resolve(options.key);
  }
}

/** Checks modules_enabled names and validates each module's options, replacing them by the parsed values. */
function checkModules(options: HostOptions, where: string[], modules: ModuleSchemas, problems: string[]): void {
  for (const name of options.modules_enabled) {
    if (!modules.has(name)) problems.push(`${keyPath([...where, 'modules_enabled'])}: no module named "${name}"`);
  }
  const parsedOptions: Record<string, Record<string, unknown>> = {};
  // Every known module gets its parsed options (defaults when not configured), so a module's
  // settings read the same whether it is enabled here or not.
  for (const name of new Set([...modules.names(), ...options.modules_enabled, ...Object.keys(options.modules)])) {
    const schema = modules.schema(name);
    if (!modules.has(name)) {
      if (name in options.modules) problems.push(`${keyPath([...where, 'modules', name])}: no module named "${name}"`);
      continue;
    }
    if (!schema) continue;
    const result = schema.safeParse(options.modules[name] ?? {});
    if (result.success) parsedOptions[name] = result.data as Record<string, unknown>;
    else problems.push(...describeIssues(result.error, [...where, 'modules', name], options.modules[name]));
  }
  options.modules = parsedOptions;
}

function pickHostOptions(raw: Record<string, unknown>): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(HostOptions.shape)) if (key in raw) picked[key] = raw[key];
  return picked;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Tables merge key by key; anything else in `over` replaces `base`. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTable(v) && isTable(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  return out;
}

/** `"env:NAME"` anywhere in the file reads the variable NAME, so secrets stay out of the file. */
function resolveEnv(value: unknown, at: (string | number)[], problems: string[]): unknown {
  if (typeof value === 'string' && value.startsWith('env:')) {
    const name = value.slice(4);
    const env = process.env[name];
    if (env === undefined) problems.push(`${keyPath(at)}: environment variable ${name} is not set`);
    return env ?? '';
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveEnv(v, [...at, i], problems));
  if (isTable(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveEnv(v, [...at, k], problems)]));
  }
  return value;
}

export function keyPath(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const s = String(p);
      const bare = /^[A-Za-z0-9_-]+$/.test(s) ? s : JSON.stringify(s);
      out += out ? `.${bare}` : bare;
    }
  }
  return out || '(top level)';
}

function describeIssues(error: z.ZodError, prefix: (string | number)[], raw: unknown): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys
        .map((key) => {
          const known = knownKeysAt(raw, issue.path);
          const hint = closest(key, known);
          return `${keyPath([...prefix, ...issue.path, key])}: unknown key${hint ? ` (did you mean "${hint}"?)` : ''}`;
        })
        .join('\n  ');
    }
    const got = valueAt(raw, issue.path);
    const received = got === undefined ? '' : `, got ${JSON.stringify(got)}`;
    return `${keyPath([...prefix, ...issue.path])}: ${issue.message}${received}`;
  });
}

function valueAt(raw: unknown, at: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const p of at) v = isTable(v) || Array.isArray(v) ? (v as Record<PropertyKey, unknown>)[p as string] : undefined;
  return v;
}

/** The keys the schema knows at a path, for "did you mean" hints. */
function knownKeysAt(_raw: unknown, at: readonly PropertyKey[]): string[] {
  let schema: unknown = ConfigSchema;
  for (const p of at) {
    const shape = (schema as { shape?: Record<string, unknown> }).shape;
    schema = shape ? unwrap(shape[p as string]) : undefined;
  }
  const shape = (unwrap(schema) as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : Object.keys(HostOptions.shape);
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { innerType?: unknown } } | undefined;
  while (s?.def?.innerType) s = s.def.innerType as typeof s;
  return s;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

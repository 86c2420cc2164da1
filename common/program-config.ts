// What the two command-line programs (watcher/ and sentinel-hooks/) share: their JSON configuration
// file, checked against a zod schema, and the local Consul agent, found through Consul's own
// environment variables the way the consul CLI finds it. st-api reads its file with readJsonFile too.
// Each program passes its own error class, so its exit code for "bad configuration" stays its own.
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { readSecretFile } from './secret-file.ts';
import { consulConnection, type ConsulConnectionFileSettings, type ConsulTlsSettings } from './consul/connection.ts';

/** A configuration file's JSON, or `fail` with a sentence that names the file and never quotes its text. */
export function readJsonFile(file: string, fail: (message: string) => Error): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw fail(`cannot read ${file} as JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    // The parser's message quotes the text around the mistake, which may be a secret.
    throw fail(`${file} is not valid JSON (its text is not repeated here: it may hold secrets)`);
  }
}

/** The file parsed and checked; every problem is named by its key, in one message. */
export function readConfigFile<Schema extends z.ZodType>(file: string, schema: Schema, fail: (message: string) => Error): z.output<Schema> {
  const raw = readJsonFile(file, fail);
  const result = schema.safeParse(raw);
  if (!result.success) {
    throw fail(
      `invalid configuration in ${file}:\n${result.error.issues.map((issue) => `  - ${issue.path.join('.') || '(root)'}: ${issue.message}`).join('\n')}`,
    );
  }
  return result.data;
}

export interface ConsulAgentSettings {
  /** CONSUL_HTTP_ADDR (else consulAddress, else 127.0.0.1:8500): `host:port`, or `https://host:port` for TLS. */
  readonly consulAddress: string;
  readonly consulToken: string | undefined;
  /** CONSUL_CACERT, CONSUL_CLIENT_CERT… (or their keys in the file); undefined for plain HTTP. */
  readonly consulTls: ConsulTlsSettings | undefined;
  /** For the program to log once it has its logger (an unverified certificate, a key or token file others can read). */
  readonly consulWarnings: readonly string[];
}

/**
 * The agent's address and TLS (common/consul/connection.ts: each variable over its key in `file`)
 * and the token: CONSUL_HTTP_TOKEN, else the file CONSUL_HTTP_TOKEN_FILE names (so a watch handler,
 * which inherits the whole agent environment, need not carry the secret itself in that environment).
 */
export function consulAgentSettings(
  env: NodeJS.ProcessEnv,
  file: ConsulConnectionFileSettings,
  configFile: string,
  fail: (message: string) => Error,
): ConsulAgentSettings {
  const connection = consulConnection(env, file, configFile, fail);
  const warnings = [...connection.warnings];
  return {
    consulAddress: connection.address,
    consulToken: consulToken(env, fail, warnings),
    consulTls: connection.tls,
    consulWarnings: warnings,
  };
}

function consulToken(env: NodeJS.ProcessEnv, fail: (message: string) => Error, warnings: string[]): string | undefined {
  if (env.CONSUL_HTTP_TOKEN !== undefined && env.CONSUL_HTTP_TOKEN !== '') return env.CONSUL_HTTP_TOKEN;
  const file = env.CONSUL_HTTP_TOKEN_FILE;
  if (file === undefined || file === '') return undefined;
  try {
    return readSecretFile(file, (warning) => warnings.push(warning.message)).trim();
  } catch {
    throw fail(`cannot read the Consul token file named by CONSUL_HTTP_TOKEN_FILE (${file})`);
  }
}

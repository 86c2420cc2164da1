// The embedded default: a complete configuration with demo keys, the demo catalog in memory, and a
// token to try it with. Nothing here is used once ST_API_CONFIG is set.
//
// `npm start` keeps its keys in a local directory (demoKeyDir), so a token pasted into an app or
// minted by `npm run demo:token` outlives a restart; tests pass no directory and get fresh keys.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { readSecretFile, type SecretFileWarning } from '../../common/secret-file.ts';
import type { DemoPlayOutcome } from './play-loader.ts';

export const DEMO_ISSUER = 'https://auth.demo.st-api.invalid/';
export const DEMO_AUDIENCE = 'st-api';

export interface EmbeddedDemo {
  rawConfig: Record<string, unknown>;
  /** The demo auth service's RS256 key pair (PEM), for tests that forge hostile tokens. */
  clientKeys: { publicPem: string; privatePem: string };
  /** Signs a client token the way the platform's auth service would. */
  tokenFor(userId: string, lifetimeSeconds?: number): string;
  /** Where the keys are kept across restarts; undefined when they live only as long as the process. */
  keyDir?: string;
  /** Why keys asked to be kept are not (e.g. a read-only directory). */
  notKept?: string;
}

/** The demo viewers (subjects of demo tokens); what each may play is in api/catalog/dataset.ts. */
export const DEMO_VIEWERS = ['demo-user', 'premium-user', 'mobile-user', 'lapsed-user', 'sd-buyer'] as const;

const demoKeysSchema = z.object({
  clientPublicPem: z.string(),
  clientPrivatePem: z.string(),
  cloudfrontPrivatePem: z.string(),
  akamaiSecret: z.string(),
  nginxSecret: z.string(),
  wowzaSecret: z.string(),
});
type DemoKeys = z.infer<typeof demoKeysSchema>;

function generateDemoKeys(): DemoKeys {
  const client = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // ECDSA P-256: CloudFront accepts it with SHA-256, and a signature costs a tenth of an RSA-2048 one.
  const cloudfront = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    clientPublicPem: client.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    clientPrivatePem: client.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    cloudfrontPrivatePem: cloudfront.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    akamaiSecret: randomBytes(32).toString('hex'),
    nginxSecret: randomBytes(24).toString('base64url'),
    wowzaSecret: randomBytes(24).toString('hex'),
  };
}

/**
 * Where `npm start` and `npm run demo:token` keep the demo keys: ST_API_DEMO_DIR, else .st-api-demo/
 * in the working directory (npm runs both from the repository's root).
 */
export function demoKeyDir(env: NodeJS.ProcessEnv): string {
  const configured = env['ST_API_DEMO_DIR'];
  return resolve(configured === undefined || configured === '' ? '.st-api-demo' : configured);
}

/**
 * The keys kept in `dir` (made there on first use, readable by the owner only). A file that cannot
 * be read as demo keys is replaced: they are demo keys, and the only loss is old demo tokens. Where
 * the directory cannot be written (a read-only container), the keys live as long as the process.
 */
export function persistentDemoKeys(
  dir: string,
  onWarning: (warning: SecretFileWarning) => void = () => undefined,
): { keys: DemoKeys; notKept?: string } {
  const file = join(dir, 'keys.json');
  try {
    // Private signing keys, even if only the demo's: a copy others can read is said like any secret file.
    return { keys: demoKeysSchema.parse(JSON.parse(readSecretFile(file, onWarning))) };
  } catch {
    const keys = generateDemoKeys();
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
      // Written aside and renamed, so a second process starting at once never reads half a file.
      const partial = `${file}.${process.pid}`;
      writeFileSync(partial, JSON.stringify(keys, null, 2), { mode: 0o600 });
      renameSync(partial, file);
      return { keys };
    } catch (error) {
      return { keys, notKept: `cannot write ${dir} (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  }
}

/** The embedded demo, with the keys kept in `keyDir` (see persistentDemoKeys), or fresh ones without it. */
export function embeddedDemo(keyDir?: string, onWarning?: (warning: SecretFileWarning) => void): EmbeddedDemo {
  const kept = keyDir === undefined ? { keys: generateDemoKeys(), notKept: undefined } : persistentDemoKeys(keyDir, onWarning);
  const { keys } = kept;
  const { clientPublicPem, clientPrivatePem } = keys;

  const rawConfig = {
    listen: { host: '127.0.0.1', port: 8080 },
    auth: { issuer: DEMO_ISSUER, audience: DEMO_AUDIENCE, keys: [{ kid: 'demo-rs256', algorithm: 'RS256', key: clientPublicPem }] },
    // A demo in a terminal should stop at once on Ctrl-C; production drains first.
    shutdown: { drainMs: 0, timeoutMs: 5000 },
    cdns: [
      {
        name: 'cloudfront',
        origin: 'https://d111111abcdef8.cloudfront.net',
        weight: 4,
        signer: {
          type: 'cloudfront',
          hashAlgorithm: 'SHA256',
          keys: [{ id: 'KDEMOKEY1', active: true, privateKey: keys.cloudfrontPrivatePem }],
        },
      },
      {
        name: 'akamai',
        origin: 'https://akamai.demo.example.com',
        weight: 3,
        signer: { type: 'akamai', keys: [{ id: 'demo-1', active: true, secret: keys.akamaiSecret }] },
      },
      {
        name: 'origin-nginx',
        origin: 'https://edge.demo.example.com',
        weight: 2,
        signer: { type: 'nginx', keys: [{ id: 'demo-1', active: true, secret: keys.nginxSecret }] },
      },
      {
        name: 'wowza',
        origin: 'https://wowza.demo.example.com',
        weight: 1,
        signer: { type: 'wowza', keys: [{ id: 'demo-1', active: true, secret: keys.wowzaSecret }] },
      },
    ],
  };

  return {
    rawConfig,
    ...(keyDir !== undefined && kept.notKept === undefined ? { keyDir } : {}),
    ...(kept.notKept === undefined ? {} : { notKept: kept.notKept }),
    clientKeys: { publicPem: clientPublicPem, privatePem: clientPrivatePem },
    tokenFor: (userId, lifetimeSeconds = 12 * 3600) =>
      jwt.sign({}, clientPrivatePem, {
        algorithm: 'RS256',
        keyid: 'demo-rs256',
        issuer: DEMO_ISSUER,
        audience: DEMO_AUDIENCE,
        subject: userId,
        expiresIn: lifetimeSeconds,
      }),
  };
}

/** What `npm start` prints, with the play page's address or why it is off. */
export function demoInstructions(baseUrl: string, demo: EmbeddedDemo, play: DemoPlayOutcome): string {
  const token = demo.tokenFor('demo-user');
  return [
    '',
    'st-api is serving the embedded demo catalog (no MySQL or Redis configured).',
    'Get a signed playback URL:',
    '',
    `  curl -sS -X POST ${baseUrl}/v1/playback-urls \\`,
    `    -H 'Authorization: Bearer ${token}' \\`,
    `    -H 'Content-Type: application/json' \\`,
    `    -d '{"contentId":"tt-demo-0001","device":"web","quality":"auto"}'`,
    '',
    `Other demo viewers: ${DEMO_VIEWERS.filter((v) => v !== 'demo-user').join(', ')}. A token for any of them:`,
    demo.keyDir === undefined
      ? `  npm run demo:token -- <viewer>      (demo keys not kept: ${demo.notKept ?? 'no directory'}; tokens die with this process)`
      : `  npm run demo:token -- <viewer>      (the demo keys live in ${demo.keyDir} and survive a restart)`,
    `Health: curl -sS ${baseUrl}/health/deep    Metrics: curl -sS ${baseUrl}/metrics    API: ${baseUrl}/openapi.json`,
    'unavailable' in play
      ? `The demo CDN hosts are not real, and the play page is off: ${play.unavailable}.`
      : `Watch it play: open ${baseUrl}/demo/`,
    '',
  ].join('\n');
}

// The embedded default: a complete configuration with freshly generated demo keys, the demo catalog
// in memory, and a token to try it with. Nothing here is used once ST_API_CONFIG is set.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';

export const DEMO_ISSUER = 'https://auth.demo.st-api.invalid/';
export const DEMO_AUDIENCE = 'st-api';

export interface EmbeddedDemo {
  rawConfig: Record<string, unknown>;
  /** The demo auth service's RS256 key pair (PEM), for tests that forge hostile tokens. */
  clientKeys: { publicPem: string; privatePem: string };
  /** Signs a client token the way the platform's auth service would. */
  tokenFor(userId: string, lifetimeSeconds?: number): string;
}

export function embeddedDemo(): EmbeddedDemo {
  const client = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // ECDSA P-256: CloudFront accepts it with SHA-256, and a signature costs a tenth of an RSA-2048 one.
  const cloudfront = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const clientPublicPem = client.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const clientPrivatePem = client.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

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
          keys: [{ id: 'KDEMOKEY1', active: true, privateKey: cloudfront.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }],
        },
      },
      {
        name: 'akamai',
        origin: 'https://akamai.demo.example.com',
        weight: 3,
        signer: { type: 'akamai', keys: [{ id: 'demo-1', active: true, secret: randomBytes(32).toString('hex') }] },
      },
      {
        name: 'origin-nginx',
        origin: 'https://edge.demo.example.com',
        weight: 2,
        signer: { type: 'nginx', keys: [{ id: 'demo-1', active: true, secret: randomBytes(24).toString('base64url') }] },
      },
      {
        name: 'wowza',
        origin: 'https://wowza.demo.example.com',
        weight: 1,
        signer: { type: 'wowza', keys: [{ id: 'demo-1', active: true, secret: randomBytes(24).toString('hex') }] },
      },
    ],
  };

  return {
    rawConfig,
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

export function demoInstructions(baseUrl: string, demo: EmbeddedDemo): string {
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
    'Other demo viewers (subject of the token): premium-user, mobile-user, lapsed-user, sd-buyer.',
    `Health: curl -sS ${baseUrl}/health/deep    Metrics: curl -sS ${baseUrl}/metrics    API: ${baseUrl}/openapi.json`,
    'The demo CDN hosts are not real. To watch a title play through a real edge: npm run demo:play',
    '',
  ].join('\n');
}

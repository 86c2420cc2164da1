// Client JWTs for the load, signed before any load starts: RS256 signing costs ~1.5 ms of CPU per
// token, far more than a play, so signing inside the load loop would measure the load generator.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { DEMO_AUDIENCE, DEMO_ISSUER, type EmbeddedDemo } from '../api/demo/embedded.ts';

interface TokenJob {
  /** Absolute path of jsonwebtoken, the library tokenFor() uses. */
  jsonwebtoken: string;
  privatePem: string;
  kid: string;
  issuer: string;
  audience: string;
  lifetimeSeconds: number;
  userIds: string[];
}

/** The kid the demo configuration pins for its RS256 client key (what tokenFor() puts in the header). */
function demoKid(demo: EmbeddedDemo): string {
  const auth = demo.rawConfig['auth'] as { keys: { kid?: string }[] };
  const kid = auth.keys[0]?.kid;
  if (kid === undefined) throw new Error('the embedded demo configuration has no client key id');
  return kid;
}

/**
 * Signs one token per user on worker threads (one per core), exactly as demo.tokenFor() would:
 * same key, kid, issuer, audience and algorithm. One token is cross-checked against tokenFor()'s
 * header and claims so the two cannot drift apart silently.
 */
export async function signTokens(demo: EmbeddedDemo, userIds: readonly string[], lifetimeSeconds: number): Promise<Map<string, string>> {
  const threads = Math.max(1, Math.min(availableParallelism(), 4));
  const share = Math.ceil(userIds.length / threads);
  const jobs: TokenJob[] = [];
  for (let start = 0; start < userIds.length; start += share) {
    jobs.push({
      jsonwebtoken: createRequire(import.meta.url).resolve('jsonwebtoken'),
      privatePem: demo.clientKeys.privatePem,
      kid: demoKid(demo),
      issuer: DEMO_ISSUER,
      audience: DEMO_AUDIENCE,
      lifetimeSeconds,
      userIds: userIds.slice(start, start + share),
    });
  }
  const results = await Promise.all(jobs.map((job) => runWorker(job)));
  const tokens = new Map<string, string>();
  results.forEach((signed, jobIndex) => signed.forEach((token, index) => tokens.set(jobs[jobIndex]?.userIds[index] ?? '', token)));
  const sample = userIds[0];
  if (sample !== undefined) assertSameShape(tokens.get(sample) ?? '', demo.tokenFor(sample, lifetimeSeconds));
  return tokens;
}

// Plain JavaScript: Node 20 does not run tsx's loader inside worker threads.
const WORKER_SOURCE = `
const { parentPort, workerData: job } = require('node:worker_threads');
const jwt = require(job.jsonwebtoken);
parentPort.postMessage(job.userIds.map((userId) => jwt.sign({}, job.privatePem, {
  algorithm: 'RS256', keyid: job.kid, issuer: job.issuer, audience: job.audience, subject: userId, expiresIn: job.lifetimeSeconds,
})));
`;

function runWorker(job: TokenJob): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: job });
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error('token signing worker timed out'));
    }, 180_000);
    worker.once('message', (tokens: string[]) => {
      clearTimeout(timer);
      resolve(tokens);
      void worker.terminate();
    });
    worker.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function assertSameShape(ours: string, theirs: string): void {
  const decode = (token: string, part: number): Record<string, unknown> =>
    JSON.parse(Buffer.from(token.split('.')[part] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  const keys = (value: Record<string, unknown>) => Object.keys(value).sort().join(',');
  const [a, b] = [decode(ours, 0), decode(theirs, 0)];
  const [c, d] = [decode(ours, 1), decode(theirs, 1)];
  if (
    JSON.stringify(a) !== JSON.stringify(b) ||
    keys(c) !== keys(d) ||
    c['iss'] !== d['iss'] ||
    c['aud'] !== d['aud'] ||
    c['sub'] !== d['sub']
  ) {
    throw new Error('bench tokens differ in shape from demo.tokenFor(); update WORKER_SOURCE in bench/tokens.ts');
  }
}

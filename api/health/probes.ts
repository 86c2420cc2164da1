// The dependencies /health/deep looks at. Each probe answers for one thing and says it in a few words.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { withTimeout } from '../../common/with-timeout.ts';
import { redisStuck, type RedisSource } from '../redis/client.ts';
import type { ManifestCache } from '../manifests/origin-cache.ts';
import type { UrlSigner } from '../signing/signer.ts';
import { describeFailure, elapsed, type Probe } from './deep-health.ts';

export function mysqlProbe(ping: ((timeoutMs: number) => Promise<void>) | undefined): Probe {
  return {
    name: 'mysql',
    essential: true,
    async run(timeoutMs) {
      if (ping === undefined) return { status: 'ok', text: 'embedded' };
      const started = process.hrtime.bigint();
      await ping(timeoutMs);
      return { status: 'ok', text: `ok(${elapsed(started)})` };
    },
  };
}

/**
 * Redis is optional: down, still being looked up, or a replica is a warning (plays go to MySQL),
 * never critical.
 */
export function redisProbe(source: RedisSource | undefined): Probe {
  return {
    name: 'redis',
    essential: false,
    async run() {
      if (source === undefined) return { status: 'ok', text: 'off' };
      const redis = source.client();
      if (redis === undefined) return { status: 'warn', text: source.unavailable() };
      const started = process.hrtime.bigint();
      try {
        const role = (await withTimeout(redis.call('ROLE'), source.deadlineMs, redisStuck)) as unknown[];
        const name = String(role[0]);
        if (name === 'master') return { status: 'ok', text: `ok(${elapsed(started)},master)` };
        // A demoted master that nobody has written to yet shows here first.
        source.reportNotMaster(name, redis);
        return { status: 'warn', text: `not-master(${name})` };
      } catch (error) {
        source.reportError(error, redis);
        return { status: 'warn', text: describeFailure(error) };
      }
    },
  };
}

/** Every CDN needs a usable active key; one expiring within the warning window is flagged early. */
export function signingKeysProbe(signers: readonly UrlSigner[], warningDays: number, now: () => number): Probe {
  return {
    name: 'keys',
    essential: true,
    run() {
      const horizon = now() + warningDays * 24 * 3600 * 1000;
      const expired = signers.filter((signer) => signer.activeKey.notAfter !== undefined && signer.activeKey.notAfter.getTime() <= now());
      const expiring = signers.filter(
        (signer) => signer.activeKey.notAfter !== undefined && signer.activeKey.notAfter.getTime() <= horizon,
      );
      if (signers.length === 0 || expired.length === signers.length) return Promise.resolve({ status: 'fail', text: 'none-usable' });
      if (expired.length > 0) return Promise.resolve({ status: 'warn', text: `expired(${expired.map((s) => s.activeKey.id).join(',')})` });
      if (expiring.length > 0)
        return Promise.resolve({ status: 'warn', text: `expiring(${expiring.map((s) => s.activeKey.id).join(',')})` });
      return Promise.resolve({ status: 'ok', text: `ok(${signers.length})` });
    },
  };
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * The certificate the public port serves now (after any rotation): whole days left, a warning within
 * the same window as the signing keys, critical once expired (clients refuse every handshake).
 */
export function servingCertificateProbe(notAfter: () => Date, warningDays: number, now: () => number): Probe {
  return {
    name: 'certificate',
    essential: true,
    run() {
      const left = notAfter().getTime() - now();
      const days = `${Math.max(0, Math.floor(left / DAY_MS))}d`;
      if (left <= 0) return Promise.resolve({ status: 'fail', text: 'expired' });
      if (left <= warningDays * DAY_MS) return Promise.resolve({ status: 'warn', text: `expiring(${days})` });
      return Promise.resolve({ status: 'ok', text: `ok(${days})` });
    },
  };
}

/** Event-loop lag since the previous check: a node that is CPU-starved should shed traffic before it times out plays. */
export function eventLoopProbe(warningMs: number): Probe & { stop(): void } {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return {
    name: 'lag',
    essential: false,
    run() {
      const p99 = histogram.percentile(99) / 1e6;
      histogram.reset();
      const text = `${Math.round(p99)}ms`;
      return Promise.resolve(p99 > warningMs ? { status: 'warn', text: `high(${text})` } : { status: 'ok', text: `ok(${text})` });
    },
    stop: () => histogram.disable(),
  };
}

/** Once SIGTERM arrives the node reports critical, so Consul and the watcher take it out of DNS while it drains. */
export function drainingProbe(isDraining: () => boolean): Probe {
  return {
    name: 'node',
    essential: true,
    run: () => Promise.resolve(isDraining() ? { status: 'fail', text: 'draining' } : { status: 'ok', text: 'serving' }),
  };
}

/**
 * Tokenized-manifest delivery: a failing origin is a warning (cached copies still answer for
 * `staleSeconds`, and the other CDNs are unaffected), named so on-call knows which origin to look at.
 */
export function manifestOriginsProbe(cache: ManifestCache, cdns: readonly string[]): Probe {
  return {
    name: 'manifests',
    essential: false,
    run() {
      const failing = cache.health(cdns).filter((origin) => origin.failing !== undefined);
      if (failing.length > 0)
        return Promise.resolve({
          status: 'warn',
          text: `origin-down(${failing.map((origin) => `${origin.cdn}:${origin.failing}`).join(',')})`,
        });
      return Promise.resolve({ status: 'ok', text: `ok(${cache.size} cached)` });
    },
  };
}

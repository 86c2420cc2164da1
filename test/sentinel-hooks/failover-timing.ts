// Figures for the README: `npx tsx test/sentinel-hooks/failover-timing.ts [runs]` kills the
// master with -9 `runs` times (default 5) and prints, per run, when the Sentinels agreed on the
// new master and when master.redis.service.consul answered it, then the median and max.
// Between runs the killed master restarts without replicaof and must end as a replica.
import { sleep, waitFor } from '../../testkit/processes.ts';
import { sampleUntil, startHooksSystem } from './system.ts';

const runs = Math.min(20, Math.max(1, Number(process.argv[2] ?? 5)));
const system = await startHooksSystem({ reconcilePeriodMs: 2000 });
process.stdout.write(`logs: ${system.dir} (kept with ST_TEST_KEEP_DIRS=1)\n`);
const results: { sentinels: number; done: number; dns: number }[] = [];
try {
  await system.cluster.waitStable(30_000);
  await Promise.all([0, 1, 2].map((i) => system.cli(i, ['reconcile'])));
  system.startReconcileTimer();
  for (let run = 1; run <= runs; run++) {
    await system.cluster.waitStable(30_000);
    const master = await waitFor(
      async () => {
        const addrs = await system.cluster.masterAddrs();
        const dns = await system.dnsMasters();
        const regs = await system.registrations();
        return addrs.every((a) => a === addrs[0]) &&
          dns.length === 1 &&
          `${dns[0]}:${system.cluster.redis[0]?.port}` === addrs[0] &&
          regs.every((r) => r.health === 'passing')
          ? addrs[0]
          : null;
      },
      { timeoutMs: 40_000, intervalMs: 200, what: 'a settled cluster' },
    );
    const victim = system.cluster.redisByKey(master ?? '');
    const killedAt = Date.now();
    await victim.kill();
    const next = await waitFor(
      async () => {
        const addrs = await system.cluster.masterAddrs();
        return addrs.every((a) => a !== null && a !== master && a === addrs[0]) ? addrs[0] : null;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'the Sentinels to agree on a new master' },
    );
    const sentinelsAt = Date.now();
    const isNew = (d: string[]): boolean => d.length === 1 && d[0] === next?.split(':')[0];
    const samples = await sampleUntil(
      async () => ({ dns: await system.dnsMasters(), inProgress: await system.failoverInProgress() }),
      (s) => isNew(s.dns) && !s.inProgress,
      { intervalMs: 50, timeoutMs: 20_000, what: `DNS answering ${next} with the failover over` },
    );
    const dnsAt = samples.find((s) => isNew(s.value.dns))?.at ?? Number.NaN;
    const doneAt = samples.find((s) => !s.value.inProgress)?.at ?? Number.NaN;
    results.push({ sentinels: sentinelsAt - killedAt, done: doneAt - killedAt, dns: dnsAt - killedAt });
    process.stdout.write(
      `run ${run}: killed ${master}; Sentinels agreed on ${next} after ${sentinelsAt - killedAt} ms, failover done after ${doneAt - killedAt} ms; DNS answered it after ${dnsAt - killedAt} ms\n`,
    );
    await sleep(500);
    await victim.start(null);
  }
} finally {
  await system.stop();
}
const stats = (values: number[]): string => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid =
    sorted.length % 2 === 1
      ? (sorted[(sorted.length - 1) / 2] ?? 0)
      : ((sorted[sorted.length / 2 - 1] ?? 0) + (sorted[sorted.length / 2] ?? 0)) / 2;
  return `median ${mid} ms, max ${sorted.at(-1)} ms`;
};
process.stdout.write(`kill -9 → Sentinels agree: ${stats(results.map((r) => r.sentinels))}\n`);
process.stdout.write(`kill -9 → Consul DNS answers the new master: ${stats(results.map((r) => r.dns))}\n`);
process.stdout.write(`kill -9 → failover done (no Sentinel flags failover_in_progress): ${stats(results.map((r) => r.done))}\n`);
process.stdout.write(`Sentinels agree → DNS: ${stats(results.map((r) => r.dns - r.sentinels))}\n`);
process.stdout.write(`failover done → DNS (negative = DNS first): ${stats(results.map((r) => r.dns - r.done))}\n`);

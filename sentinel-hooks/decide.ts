// The one decision everything else serves: which tag (and which check state) a local Redis
// instance gets, from what it says about itself (ROLE) and what a majority of Sentinels say.
// Pure, so the rules can be tested without servers. The rules, safest first:
//   - only an instance that says ROLE=master AND that a Sentinel majority names is tagged master;
//   - any other instance is tagged replica; if that contradicts ROLE (a stale master awaiting
//     demotion, a dead instance) its check is critical, so it leaves DNS altogether;
//   - with no Sentinel majority nothing is promoted; an existing master keeps its tag with a
//     warning (still in DNS: losing the Sentinels must not take the working master away).

export type Role =
  | { readonly kind: 'master' }
  | { readonly kind: 'replica'; readonly master: string; readonly link: string }
  | { readonly kind: 'other'; readonly role: string }
  | { readonly kind: 'unreachable'; readonly error: string };

export interface SentinelView {
  /** The address a strict majority of the configured Sentinels report, else null. */
  readonly master: string | null;
  /** e.g. "2/3", for messages. */
  readonly agreement: string;
}

export type Tag = 'master' | 'replica';
export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface Decision {
  readonly tag: Tag;
  /** Meta `role`: what on-call engineers read first. */
  readonly metaRole: 'master' | 'replica' | 'failing';
  readonly status: CheckStatus;
  /** The TTL check's output: the comparison, in words. */
  readonly output: string;
  /** The configuration names something that is not a Redis data instance. */
  readonly misconfigured: boolean;
}

export interface SentinelAnswer {
  readonly sentinel: string;
  /** `ip:port`, null when the Sentinel does not know the master, undefined when it did not answer. */
  readonly master: string | null | undefined;
  /** Why there is no answer (connection refused, WRONGPASS…), for the log. */
  readonly error?: string;
}

/** Strict majority of the CONFIGURED Sentinels, so silent ones count against agreement. */
export function sentinelView(answers: readonly SentinelAnswer[], configured: number): SentinelView {
  const votes = new Map<string, number>();
  for (const answer of answers) {
    if (typeof answer.master === 'string') votes.set(answer.master, (votes.get(answer.master) ?? 0) + 1);
  }
  const needed = Math.floor(configured / 2) + 1;
  let best: [string, number] | null = null;
  for (const entry of votes) if (best === null || entry[1] > best[1]) best = entry;
  const agreement = `${best?.[1] ?? 0}/${configured}`;
  return { master: best !== null && best[1] >= needed ? best[0] : null, agreement };
}

export function describeRole(role: Role): string {
  switch (role.kind) {
    case 'master':
      return 'ROLE=master';
    case 'replica':
      return `ROLE=slave (master ${role.master}, link ${role.link})`;
    case 'other':
      return `ROLE=${role.role}`;
    case 'unreachable':
      return `ROLE unreachable (${role.error})`;
  }
}

export function decide(instance: string, role: Role, view: SentinelView, currentTag: Tag | null): Decision {
  const sentinels =
    view.master === null ? `no Sentinel majority (${view.agreement})` : `Sentinels (${view.agreement}): master is ${view.master}`;
  switch (role.kind) {
    case 'unreachable':
      return {
        tag: 'replica',
        metaRole: 'failing',
        status: 'critical',
        output: `tag=replica but ${describeRole(role)}; ${sentinels}`,
        misconfigured: false,
      };
    case 'other':
      return {
        tag: 'replica',
        metaRole: 'failing',
        status: 'critical',
        output: `tag=replica but ${describeRole(role)}: ${instance} is not a Redis data instance, fix the configuration`,
        misconfigured: true,
      };
    case 'master':
      if (view.master === instance)
        return {
          tag: 'master',
          metaRole: 'master',
          status: 'passing',
          output: `tag=master, ROLE=master; ${sentinels}`,
          misconfigured: false,
        };
      if (view.master === null && currentTag === 'master') {
        return {
          tag: 'master',
          metaRole: 'master',
          status: 'warning',
          output: `tag=master, ROLE=master, but ${sentinels}: not confirmed`,
          misconfigured: false,
        };
      }
      // A deposed master stays writable for seconds (forced failover, restart without replicaof):
      // out of DNS until Sentinel converts it.
      return {
        tag: 'replica',
        metaRole: 'failing',
        status: 'critical',
        output: `tag=replica but ROLE=master; ${sentinels}`,
        misconfigured: false,
      };
    case 'replica': {
      if (view.master !== null && role.master !== view.master) {
        return {
          tag: 'replica',
          metaRole: 'replica',
          status: 'warning',
          output: `tag=replica, ${describeRole(role)}, but ${sentinels}`,
          misconfigured: false,
        };
      }
      if (role.link !== 'connected') {
        return {
          tag: 'replica',
          metaRole: 'replica',
          status: 'warning',
          output: `tag=replica, ${describeRole(role)}: not in sync; ${sentinels}`,
          misconfigured: false,
        };
      }
      return {
        tag: 'replica',
        metaRole: 'replica',
        status: 'passing',
        output: `tag=replica, ${describeRole(role)}; ${sentinels}`,
        misconfigured: false,
      };
    }
  }
}

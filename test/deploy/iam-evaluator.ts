// A small IAM policy evaluator: enough of AWS's documented logic to judge the watcher's policy
// (Allow/Deny, Action and Resource wildcards, the String* condition operators with the ForAllValues /
// ForAnyValue set qualifiers). Anything it does not model throws, so a policy that starts using
// NotAction, another operator or a policy variable cannot pass by being misread.

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface Policy {
  Version: string;
  Statement: Statement[];
}

/** One API call as IAM sees it: action, resource ARN and the request's condition-key values. */
export interface RequestContext {
  action: string;
  resource: string;
  keys: Record<string, string[]>;
}

export type Decision = 'Allow' | 'ImplicitDeny' | 'ExplicitDeny';

const SUPPORTED_STATEMENT_FIELDS = new Set(['Sid', 'Effect', 'Action', 'Resource', 'Condition']);

export function evaluate(policy: Policy, request: RequestContext): Decision {
  let allowed = false;
  for (const statement of policy.Statement) {
    for (const field of Object.keys(statement)) {
      if (!SUPPORTED_STATEMENT_FIELDS.has(field)) throw new Error(`evaluator does not model ${field}`);
    }
    if (!matchesAny(asList(statement.Action), request.action, true)) continue;
    if (!matchesAny(asList(statement.Resource), request.resource, false)) continue;
    if (!conditionsHold(statement.Condition ?? {}, request.keys)) continue;
    // An explicit Deny wins over any Allow, whatever the order.
    if (statement.Effect === 'Deny') return 'ExplicitDeny';
    allowed = true;
  }
  return allowed ? 'Allow' : 'ImplicitDeny';
}

function asList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** IAM wildcards: `*` any run, `?` one character. Actions compare case-insensitively, ARNs do not. */
function globMatches(pattern: string, value: string, ignoreCase: boolean): boolean {
  if (pattern.includes('${')) throw new Error(`unrendered placeholder or policy variable in ${pattern}`);
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`, ignoreCase ? 'i' : '').test(value);
}

function matchesAny(patterns: string[], value: string, ignoreCase: boolean): boolean {
  return patterns.some((pattern) => globMatches(pattern, value, ignoreCase));
}

function conditionsHold(condition: Record<string, Record<string, string | string[]>>, keys: Record<string, string[]>): boolean {
  // Every operator block must hold, and within a block every key (AND); values within a key are OR.
  return Object.entries(condition).every(([operator, block]) =>
    Object.entries(block).every(([key, policyValues]) => operatorHolds(operator, asList(policyValues), keys[key])),
  );
}

function operatorHolds(operator: string, policyValues: string[], requestValues: string[] | undefined): boolean {
  const [qualifier, base] = operator.includes(':') ? (operator.split(':', 2) as [string, string]) : [undefined, operator];
  const match = baseOperator(base);
  const one = (value: string): boolean => policyValues.some((policyValue) => match(policyValue, value));
  switch (qualifier) {
    // True when every request value matches — and, as AWS documents, when there are none.
    case 'ForAllValues':
      return (requestValues ?? []).every(one);
    case 'ForAnyValue':
      return (requestValues ?? []).some(one);
    case undefined:
      // A single-valued operator on a missing key does not match.
      return requestValues !== undefined && requestValues.length === 1 && one(requestValues[0] ?? '');
    default:
      throw new Error(`evaluator does not model the set qualifier ${qualifier}`);
  }
}

function baseOperator(name: string): (policyValue: string, value: string) => boolean {
  switch (name) {
    case 'StringEquals':
      return (policyValue, value) => policyValue === value;
    case 'StringEqualsIgnoreCase':
      return (policyValue, value) => policyValue.toLowerCase() === value.toLowerCase();
    case 'StringLike':
      return (policyValue, value) => globMatches(policyValue, value, false);
    default:
      throw new Error(`evaluator does not model the condition operator ${name}`);
  }
}

/**
 * Route53's normalisation for route53:ChangeResourceRecordSetsNormalizedRecordNames (DeveloperGuide
 * specifying-rrset-conditions): lowercase, no trailing dot, anything but a-z 0-9 - _ . as \ooo octal.
 * A name already carrying \ooo escapes (as Route53 returns `*`) keeps them.
 */
export function normalizeRecordName(name: string): string {
  const lower = name.toLowerCase().replace(/\.$/, '');
  let out = '';
  for (let i = 0; i < lower.length; i += 1) {
    const char = lower[i] ?? '';
    if (char === '\\' && /^\\[0-7]{3}/.test(lower.slice(i))) {
      out += lower.slice(i, i + 4);
      i += 3;
    } else if (/[a-z0-9_.-]/.test(char)) {
      out += char;
    } else {
      out += `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`;
    }
  }
  return out;
}

/** The request context of a ChangeResourceRecordSets call: one key value per change, as Route53 fills them. */
export function changeRequest(zoneId: string, changes: readonly { action: string; name: string; type: string }[]): RequestContext {
  return {
    action: 'route53:ChangeResourceRecordSets',
    resource: `arn:aws:route53:::hostedzone/${zoneId}`,
    keys: {
      'route53:ChangeResourceRecordSetsNormalizedRecordNames': changes.map((change) => normalizeRecordName(change.name)),
      'route53:ChangeResourceRecordSetsRecordTypes': changes.map((change) => change.type),
      'route53:ChangeResourceRecordSetsActions': changes.map((change) => change.action),
    },
  };
}

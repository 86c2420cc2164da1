// A small subset of Consul's `?filter=` language (hashicorp/go-bexpr), enough
// for the selectors the project might use on health and catalog results:
//   Sel == "v"   Sel != "v"   "v" in Sel   "v" not in Sel   Sel contains "v"
//   Sel is empty   Sel is not empty   Sel matches "re"   and / or / not / ( )
// A selector is a dotted path (Service.Tags, Node.Meta.az, Checks.Status);
// over a list, a comparison holds when it holds for any element, as in bexpr.
import { ConsulError } from './store.ts';

type Token = { kind: 'str'; value: string } | { kind: 'word'; value: string } | { kind: 'op'; value: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length && tokens.length < 1000) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === '`') {
      let j = i + 1;
      let value = '';
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\' && c === '"' && j + 1 < text.length) j++;
        value += text[j]!;
        j++;
      }
      if (j >= text.length) throw new ConsulError(400, `Failed to create boolean expression evaluator: unterminated string at ${i}`);
      tokens.push({ kind: 'str', value });
      i = j + 1;
      continue;
    }
    if (text.startsWith('==', i) || text.startsWith('!=', i)) {
      tokens.push({ kind: 'op', value: text.slice(i, i + 2) });
      i += 2;
      continue;
    }
    if (c === '(' || c === ')') {
      tokens.push({ kind: 'op', value: c });
      i++;
      continue;
    }
    const m = /^[A-Za-z0-9_.\-/:]+/.exec(text.slice(i));
    if (m === null) throw new ConsulError(400, `Failed to create boolean expression evaluator: unexpected "${c}" at ${i}`);
    tokens.push({ kind: 'word', value: m[0] });
    i += m[0].length;
  }
  return tokens;
}

type Predicate = (value: unknown) => boolean;

function select(value: unknown, path: string[]): unknown[] {
  let current: unknown[] = [value];
  for (const part of path) {
    const next: unknown[] = [];
    for (const item of current) {
      const items = Array.isArray(item) ? item : [item];
      for (const x of items) {
        if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
          const v = (x as Record<string, unknown>)[part];
          if (v !== undefined) next.push(v);
        }
      }
    }
    current = next;
  }
  return current;
}

const flat = (values: unknown[]): unknown[] => values.flatMap((v): unknown[] => (Array.isArray(v) ? (v as unknown[]) : [v]));
const isEmpty = (v: unknown): boolean =>
  v === undefined ||
  v === null ||
  v === '' ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

export function compileFilter(text: string): Predicate {
  const tokens = tokenize(text);
  let pos = 0;
  const fail = (why: string): never => {
    throw new ConsulError(400, `Failed to create boolean expression evaluator: ${why}`);
  };
  const peekWord = (w: string): boolean => tokens[pos]?.kind === 'word' && tokens[pos]?.value.toLowerCase() === w;
  const expectString = (): string => {
    const t = tokens[pos++];
    if (t?.kind !== 'str') fail('expected a quoted value');
    return (t as { value: string }).value;
  };

  function primary(): Predicate {
    const t = tokens[pos];
    if (t === undefined) return fail('unexpected end of expression');
    if (t.kind === 'op' && t.value === '(') {
      pos++;
      const inner = orExpr();
      if (tokens[pos]?.value !== ')') fail('missing )');
      pos++;
      return inner;
    }
    if (peekWord('not')) {
      pos++;
      const inner = primary();
      return (v) => !inner(v);
    }
    if (t.kind === 'str') {
      pos++;
      const negate = peekWord('not');
      if (negate) pos++;
      if (!peekWord('in')) fail('expected "in"');
      pos++;
      const sel = tokens[pos++];
      if (sel?.kind !== 'word') fail('expected a selector');
      const path = (sel as { value: string }).value.split('.');
      return (v) => {
        const values = select(v, path);
        const hit = values.some((x) =>
          Array.isArray(x)
            ? x.includes(t.value)
            : typeof x === 'string'
              ? x.includes(t.value)
              : x !== null && typeof x === 'object'
                ? t.value in x
                : false,
        );
        return negate ? !hit : hit;
      };
    }
    if (t.kind !== 'word') return fail(`unexpected "${t.value}"`);
    pos++;
    const path = t.value.split('.');
    const op = tokens[pos];
    if (op?.kind === 'op' && (op.value === '==' || op.value === '!=')) {
      pos++;
      const expected = expectString();
      const eq = (x: unknown): boolean => String(x) === expected;
      return op.value === '==' ? (v) => flat(select(v, path)).some(eq) : (v) => !flat(select(v, path)).some(eq);
    }
    if (peekWord('is')) {
      pos++;
      const negate = peekWord('not');
      if (negate) pos++;
      if (!peekWord('empty')) fail('expected "empty"');
      pos++;
      return (v) => {
        const values = select(v, path);
        const empty = values.length === 0 || values.every(isEmpty);
        return negate ? !empty : empty;
      };
    }
    if (peekWord('contains') || peekWord('matches')) {
      const which = tokens[pos]!.value.toLowerCase();
      pos++;
      const expected = expectString();
      if (which === 'contains')
        return (v) => select(v, path).some((x) => (Array.isArray(x) ? x.includes(expected) : String(x).includes(expected)));
      const re = new RegExp(expected);
      return (v) => flat(select(v, path)).some((x) => re.test(String(x)));
    }
    return fail(`expected an operator after ${t.value}`);
  }

  /** `operand (word operand)*`, folded left to right with `join`. */
  function chain(word: string, operand: () => Predicate, join: (l: Predicate, r: Predicate) => Predicate): Predicate {
    let left = operand();
    while (peekWord(word)) {
      pos++;
      left = join(left, operand());
    }
    return left;
  }

  function andExpr(): Predicate {
    return chain('and', primary, (l, r) => (v) => l(v) && r(v));
  }

  function orExpr(): Predicate {
    return chain('or', andExpr, (l, r) => (v) => l(v) || r(v));
  }

  const predicate = orExpr();
  if (pos !== tokens.length) fail(`unexpected "${tokens[pos]?.value ?? ''}"`);
  return predicate;
}

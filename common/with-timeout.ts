// The one way st-api's programs bound a wait: `work`, or the caller's error after `ms`.

/**
 * `work`, or a rejection with `onTimeout(ms)` once `ms` have passed without it settling. The work
 * itself is not cancelled: it finishes or fails on its own, unobserved.
 *
 * After an event-loop stall longer than `ms`, Node runs expired timers before it reads the sockets,
 * so the verdict waits one setImmediate (after the poll phase): a reply already on the socket settles
 * `work` first, and a healthy peer is not called slow because this process was busy.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: (ms: number) => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let verdict: NodeJS.Immediate | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      verdict = setImmediate(() => reject(onTimeout(ms)));
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => {
    clearTimeout(timer);
    clearImmediate(verdict);
  });
}

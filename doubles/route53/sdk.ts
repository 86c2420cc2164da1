// Test helpers shared by the Route53 double's tests: a real SDK client and
// small builders for the multivalue records the watcher publishes.
import assert from 'node:assert/strict';
import { Route53Client, type Change, type ResourceRecordSet } from '@aws-sdk/client-route-53';

export interface ClientOptions {
  /** The SDK default is 3; most tests want to see the first answer. */
  readonly maxAttempts?: number;
  readonly accessKeyId?: string;
}

export function route53Client(endpoint: string | undefined, options: ClientOptions = {}): Route53Client {
  return new Route53Client({
    ...(endpoint === undefined ? {} : { endpoint }),
    region: 'us-east-1',
    credentials: { accessKeyId: options.accessKeyId ?? 'testing', secretAccessKey: 'testing' },
    maxAttempts: options.maxAttempts ?? 1,
  });
}

export function multiValueA(name: string, setIdentifier: string, ip: string, ttl = 60): ResourceRecordSet {
  return { Name: name, Type: 'A', SetIdentifier: setIdentifier, MultiValueAnswer: true, TTL: ttl, ResourceRecords: [{ Value: ip }] };
}

export function change(action: NonNullable<Change['Action']>, recordSet: ResourceRecordSet): Change {
  return { Action: action, ResourceRecordSet: recordSet };
}

export interface AwsError {
  readonly name: string;
  readonly message: string;
  readonly $fault: string;
  readonly $metadata: { readonly httpStatusCode?: number; readonly attempts?: number };
}

/** Awaits a rejection from the SDK and checks its name, HTTP status and (optionally) message. */
export async function rejectsWithAws(
  promise: Promise<unknown>,
  expected: { readonly name: string; readonly status: number; readonly message?: string | RegExp },
): Promise<AwsError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof Error, `expected ${expected.name}, but the call succeeded`);
  const error = caught as Error & AwsError;
  assert.equal(error.name, expected.name, `error name (message: ${error.message})`);
  assert.equal(error.$metadata.httpStatusCode, expected.status, 'HTTP status');
  if (typeof expected.message === 'string') assert.equal(error.message, expected.message);
  else if (expected.message !== undefined) assert.match(error.message, expected.message);
  return error;
}

/** The fields both AWS and the double fill in, for comparing listings. */
export function essentials(set: ResourceRecordSet): Record<string, unknown> {
  return {
    Name: set.Name,
    Type: set.Type,
    SetIdentifier: set.SetIdentifier,
    MultiValueAnswer: set.MultiValueAnswer,
    TTL: set.TTL,
    Values: (set.ResourceRecords ?? []).map((r) => r.Value).sort(),
  };
}

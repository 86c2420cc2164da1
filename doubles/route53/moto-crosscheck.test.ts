// Cross-checks the Route53 double against moto (a second, independent
// implementation of the wire format): the same SDK calls must parse into the
// same results where both implement a behaviour. The second half pins down
// where moto (5.2.1) is lenient and AWS is not, as assertions of moto's
// current behaviour: if moto changes, these tests say so, and the notes in
// shared/reference/consul-route53.md §8 need updating.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  ChangeResourceRecordSetsCommand,
  CreateHostedZoneCommand,
  GetChangeCommand,
  GetHostedZoneCommand,
  ListHostedZonesByNameCommand,
  ListResourceRecordSetsCommand,
  waitUntilResourceRecordSetsChanged,
  type Change,
  type ListResourceRecordSetsCommandInput,
  type ResourceRecordSet,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import { startMoto, type MotoServer } from '../../testkit/moto.ts';
import { startRoute53Double, type Route53Double } from './server.ts';
import { change, essentials, multiValueA, rejectsWithAws, route53Client } from './sdk.ts';

const ZONE = 'play.example.com';
const NAME = 'api.play.example.com.';

interface Target {
  readonly label: 'moto' | 'double';
  readonly client: Route53Client;
  zoneId: string;
}

describe('Route53 double against moto', () => {
  let moto: MotoServer;
  let double: Route53Double;
  let motoTarget: Target;
  let doubleTarget: Target;
  let callerReference = 0;

  const targets = (): Target[] => [motoTarget, doubleTarget];
  const send = (t: Target, changes: Change[]) =>
    t.client.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: t.zoneId, ChangeBatch: { Changes: changes } }));
  const list = async (t: Target, input: Partial<ListResourceRecordSetsCommandInput> = {}) =>
    await t.client.send(new ListResourceRecordSetsCommand({ HostedZoneId: t.zoneId, ...input }));
  const sets = async (t: Target): Promise<ResourceRecordSet[]> => (await list(t)).ResourceRecordSets ?? [];
  const nonApex = async (t: Target): Promise<Record<string, unknown>[]> =>
    (await sets(t)).filter((s) => s.Type !== 'SOA' && s.Type !== 'NS').map(essentials);

  before(async () => {
    moto = await startMoto();
    double = await startRoute53Double({ rateLimit: false, insyncDelayMs: 100 });
    motoTarget = { label: 'moto', client: route53Client(moto.endpoint), zoneId: '' };
    doubleTarget = { label: 'double', client: route53Client(double.endpoint), zoneId: '' };
  });
  after(async () => {
    motoTarget.client.destroy();
    doubleTarget.client.destroy();
    await double.stop();
    await moto.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    double.reset();
    for (const t of targets()) {
      const created = await t.client.send(new CreateHostedZoneCommand({ Name: ZONE, CallerReference: `ref-${++callerReference}` }));
      t.zoneId = created.HostedZone?.Id ?? '';
    }
  });

  describe('agreement', () => {
    it('when the same CREATE, UPSERT and DELETE of multivalue A records run on both, then the SDK parses the same listings', async () => {
      for (const t of targets()) {
        await send(t, [
          change('CREATE', multiValueA(NAME, 'a', '10.0.0.1')),
          change('CREATE', multiValueA(NAME, 'b', '10.0.0.2')),
          change('CREATE', multiValueA(NAME, 'c', '10.0.0.3')),
        ]);
      }
      assert.deepEqual(await nonApex(doubleTarget), await nonApex(motoTarget));
      for (const t of targets()) await send(t, [change('UPSERT', multiValueA(NAME, 'b', '10.0.0.22', 30))]);
      assert.deepEqual(await nonApex(doubleTarget), await nonApex(motoTarget));
      for (const t of targets()) await send(t, [change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      const after = await nonApex(doubleTarget);
      assert.deepEqual(after, await nonApex(motoTarget));
      assert.deepEqual(
        after.map((s) => [s['SetIdentifier'], s['TTL'], s['Values']]),
        [
          ['b', 30, ['10.0.0.22']],
          ['c', 60, ['10.0.0.3']],
        ],
      );
    });

    it('when a zone is created, then both list NS then SOA at the apex and describe the zone alike', async () => {
      for (const t of targets()) {
        const apex = (await sets(t)).map((s) => [s.Name, s.Type, s.TTL]);
        assert.deepEqual(
          apex,
          [
            ['play.example.com.', 'NS', 172800],
            ['play.example.com.', 'SOA', 900],
          ],
          t.label,
        );
      }
      const zones = await Promise.all(targets().map((t) => t.client.send(new GetHostedZoneCommand({ Id: t.zoneId }))));
      assert.deepEqual(
        zones.map((z) => [
          z.HostedZone?.Name,
          z.HostedZone?.ResourceRecordSetCount,
          z.HostedZone?.Config?.PrivateZone,
          z.DelegationSet?.NameServers?.length,
        ]),
        [
          ['play.example.com.', 2, false, 4],
          ['play.example.com.', 2, false, 4],
        ],
      );
      const byName = await Promise.all(targets().map((t) => t.client.send(new ListHostedZonesByNameCommand({ DNSName: ZONE }))));
      assert.deepEqual(
        byName.map((r) => r.HostedZones?.map((z) => [z.Id?.startsWith('/hostedzone/'), z.Name])),
        [[[true, 'play.example.com.']], [[true, 'play.example.com.']]],
      );
    });

    it('when a change is submitted, then both return a /change/ id that GetChange and the waiter resolve to INSYNC', async () => {
      for (const t of targets()) {
        const submitted = await send(t, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
        const id = submitted.ChangeInfo?.Id ?? '';
        assert.match(id, /^\/change\/C[A-Z0-9]+$/, t.label);
        assert.ok(submitted.ChangeInfo?.SubmittedAt instanceof Date, t.label);
        assert.ok(['PENDING', 'INSYNC'].includes(submitted.ChangeInfo?.Status ?? ''), t.label);
        const waited = await waitUntilResourceRecordSetsChanged(
          { client: t.client, maxWaitTime: 10, minDelay: 1, maxDelay: 1 },
          { Id: id },
        );
        assert.equal(waited.state, 'SUCCESS', t.label);
        const got = await t.client.send(new GetChangeCommand({ Id: id }));
        // moto drops the /change/ prefix here (see the leniencies below).
        const bare = (changeId: string | undefined): string | undefined => changeId?.replace(/^\/change\//, '');
        assert.deepEqual([bare(got.ChangeInfo?.Id), got.ChangeInfo?.Status], [bare(id), 'INSYNC'], t.label);
      }
    });

    it('when an identical set is created twice, then both answer InvalidChangeBatch "already exists"', async () => {
      for (const t of targets()) {
        await send(t, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
        await rejectsWithAws(send(t, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]), {
          name: 'InvalidChangeBatch',
          status: 400,
          message: /Tried to create resource record set \[name='api\.play\.example\.com\.', type='A'.*\] but it already exists/,
        });
      }
    });

    it('when A records hold 0.0.0.0, 127.0.0.1 and 255.255.255.255 and SetIdentifiers hold a slash, then both accept them and list them alike', async () => {
      const batch = ['0.0.0.0', '127.0.0.1', '255.255.255.255'].map((ip, i) =>
        change('CREATE', multiValueA(NAME, `st-api/slash/node-${i}`, ip)),
      );
      for (const t of targets()) await send(t, batch);
      const listed = await nonApex(doubleTarget);
      assert.deepEqual(listed, await nonApex(motoTarget));
      assert.deepEqual(
        listed.map((s) => s['Values']),
        [['0.0.0.0'], ['127.0.0.1'], ['255.255.255.255']],
      );
    });

    it('when a batch holds 1001 ResourceRecord elements, then both answer "Number of records limit of 1000 exceeded."', async () => {
      const batch = Array.from({ length: 1001 }, (_, i) => change('CREATE', multiValueA(NAME, `n${i}`, `10.0.${i >> 8}.${i & 255}`)));
      for (const t of targets()) {
        await rejectsWithAws(send(t, batch), {
          name: 'InvalidChangeBatch',
          status: 400,
          message: /Number of records limit of 1000 exceeded\./,
        });
      }
    });
  });

  describe('moto leniencies (asserted so a moto change is noticed)', () => {
    it('when a record is deleted twice, then moto accepts the second DELETE while the double says it was not found', async () => {
      for (const t of targets()) {
        await send(t, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
        await send(t, [change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      }
      await send(motoTarget, [change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      await rejectsWithAws(send(doubleTarget, [change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: /was not found/,
      });
    });

    it('when DELETE carries the values from before an UPSERT, then moto accepts it (journal, not state) while the double refuses', async () => {
      for (const t of targets()) {
        await send(t, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
        await send(t, [change('UPSERT', multiValueA(NAME, 'a', '10.0.0.2'))]);
      }
      await send(motoTarget, [change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      assert.deepEqual(await nonApex(motoTarget), [], 'moto deleted the current set although the values were stale');
      await rejectsWithAws(send(doubleTarget, [change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: /do not match the current values/,
      });
    });

    it('when DELETE values match nothing ever written, then moto answers InvalidInput where AWS and the double answer InvalidChangeBatch', async () => {
      for (const t of targets()) await send(t, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      await rejectsWithAws(send(motoTarget, [change('DELETE', multiValueA(NAME, 'a', '10.9.9.9'))]), {
        name: 'InvalidInput',
        status: 400,
        message: /Expected exactly one of \[AliasTarget/,
      });
      await rejectsWithAws(send(doubleTarget, [change('DELETE', multiValueA(NAME, 'a', '10.9.9.9'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
      });
    });

    it('when CREATE repeats an existing key with different values, then moto accepts it and lists the set twice while the double refuses', async () => {
      for (const t of targets()) await send(t, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      await send(motoTarget, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.2'))]);
      assert.deepEqual(
        (await nonApex(motoTarget)).map((s) => s['SetIdentifier']),
        ['a', 'a'],
      );
      await rejectsWithAws(send(doubleTarget, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.2'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: /already exists/,
      });
    });

    it('when DELETE names a SetIdentifier used under two names, then moto removes both while the double removes only the one named', async () => {
      for (const t of targets()) {
        await send(t, [
          change('CREATE', multiValueA(NAME, 'node-1', '10.0.0.1')),
          change('CREATE', multiValueA('www.play.example.com', 'node-1', '10.0.0.1')),
        ]);
        await send(t, [change('DELETE', multiValueA(NAME, 'node-1', '10.0.0.1'))]);
      }
      assert.deepEqual(await nonApex(motoTarget), []);
      assert.deepEqual(
        (await nonApex(doubleTarget)).map((s) => s['Name']),
        ['www.play.example.com.'],
      );
    });

    it('when a later change in a batch fails, then moto keeps the earlier ones (not atomic) while the double applies nothing', async () => {
      const batch = [
        change('CREATE', multiValueA(NAME, 'a', '10.0.0.1')),
        change('CREATE', multiValueA('api.example.org', 'b', '10.0.0.2')),
      ];
      for (const t of targets())
        await rejectsWithAws(send(t, batch), { name: 'InvalidChangeBatch', status: 400, message: /is not permitted in zone/ });
      assert.equal((await nonApex(motoTarget)).length, 1);
      assert.equal((await nonApex(doubleTarget)).length, 0);
    });

    it('when one batch deletes the same set twice, then moto accepts it while the double answers InvalidChangeBatch', async () => {
      for (const t of targets()) await send(t, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      const twice = [change('DELETE', multiValueA(NAME, 'a', '10.0.0.1')), change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))];
      await send(motoTarget, twice);
      await rejectsWithAws(send(doubleTarget, twice), { name: 'InvalidChangeBatch', status: 400, message: /invalid set of changes/ });
    });

    it('when record sets break AWS shape rules, then moto accepts each while the double rejects each', async () => {
      const cases: { what: string; set: ResourceRecordSet; double: string }[] = [
        {
          what: 'CNAME beside A',
          set: { Name: NAME, Type: 'CNAME', TTL: 60, ResourceRecords: [{ Value: 'x.example.com' }] },
          double: 'InvalidChangeBatch',
        },
        {
          what: 'MultiValueAnswer without SetIdentifier',
          set: { Name: 'm.play.example.com', Type: 'A', MultiValueAnswer: true, TTL: 60, ResourceRecords: [{ Value: '10.0.0.1' }] },
          double: 'InvalidInput',
        },
        {
          what: 'Weight with MultiValueAnswer',
          set: { ...multiValueA('w.play.example.com', 's', '10.0.0.1'), Weight: 5 },
          double: 'InvalidInput',
        },
        {
          what: 'no TTL',
          set: { Name: 't.play.example.com', Type: 'A', ResourceRecords: [{ Value: '10.0.0.1' }] },
          double: 'InvalidInput',
        },
        {
          what: 'invalid IPv4',
          set: { Name: 'i.play.example.com', Type: 'A', TTL: 60, ResourceRecords: [{ Value: '10.0.0' }] },
          double: 'InvalidChangeBatch',
        },
        // moto 5.2.1 checks neither the schema's SetIdentifier length (1–128) nor AAAA values.
        {
          what: 'SetIdentifier of 310 characters',
          set: multiValueA('s.play.example.com', 'x'.repeat(310), '10.0.0.1'),
          double: 'InvalidInput',
        },
        {
          what: 'AAAA with a zone index',
          set: { Name: 'v6.play.example.com', Type: 'AAAA', TTL: 60, ResourceRecords: [{ Value: 'fe80::1%eth0' }] },
          double: 'InvalidChangeBatch',
        },
      ];
      for (const t of targets()) await send(t, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      for (const c of cases) {
        await send(motoTarget, [change('CREATE', c.set)]);
        await rejectsWithAws(send(doubleTarget, [change('CREATE', c.set)]), { name: c.double, status: 400 }).catch((error: unknown) => {
          throw new Error(`${c.what}: ${String(error)}`);
        });
      }
    });

    it('when the Values exceed 32,000 characters, then moto accepts the batch while the double answers the RDATA limit', async () => {
      const batch = Array.from({ length: 130 }, (_, i) =>
        change('CREATE', { Name: `t${i}.play.example.com`, Type: 'TXT', TTL: 60, ResourceRecords: [{ Value: `"${'x'.repeat(248)}"` }] }),
      );
      await send(motoTarget, batch);
      await rejectsWithAws(send(doubleTarget, batch), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: '[RDATA character limit of 32000 exceeded.]',
      });
    });

    it('when a name is in mixed case, then moto refuses it as outside the zone while the double (like AWS) lowercases it', async () => {
      const mixed = { Name: 'WWW.Play.Example.com', Type: 'A' as const, TTL: 60, ResourceRecords: [{ Value: '10.0.0.1' }] };
      await rejectsWithAws(send(motoTarget, [change('CREATE', mixed)]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: /is not permitted in zone/,
      });
      await send(doubleTarget, [change('CREATE', mixed)]);
      assert.deepEqual(
        (await nonApex(doubleTarget)).map((s) => s['Name']),
        ['www.play.example.com.'],
      );
    });

    it('when changes are submitted, then moto reports them INSYNC at once under one fixed id and GetChange accepts any id, echoing it without /change/', async () => {
      const first = await send(motoTarget, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      const second = await send(motoTarget, [change('CREATE', multiValueA(NAME, 'b', '10.0.0.2'))]);
      assert.deepEqual([first.ChangeInfo?.Id, first.ChangeInfo?.Status], ['/change/C2682N5HXP0BZ4', 'INSYNC']);
      assert.equal(second.ChangeInfo?.Id, first.ChangeInfo?.Id);
      const unknown = await motoTarget.client.send(new GetChangeCommand({ Id: 'CNOSUCHCHANGE' }));
      // Also: AWS answers GetChange with Id "/change/C…"; moto echoes the bare id.
      assert.deepEqual([unknown.ChangeInfo?.Id, unknown.ChangeInfo?.Status], ['CNOSUCHCHANGE', 'INSYNC']);
      const doubleGot = await doubleTarget.client.send(new GetChangeCommand({ Id: first.ChangeInfo?.Id ?? '' })).catch(() => undefined);
      assert.equal(doubleGot, undefined, "moto's fixed change id means nothing to the double");
      const doubleFirst = await send(doubleTarget, [change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      assert.equal(doubleFirst.ChangeInfo?.Status, 'PENDING');
      await rejectsWithAws(doubleTarget.client.send(new GetChangeCommand({ Id: 'CNOSUCHCHANGE' })), { name: 'NoSuchChange', status: 404 });
    });

    it('when a multivalue set is larger than MaxItems, then moto omits NextRecordIdentifier and repeats a page while the double pages through', async () => {
      const batch = Array.from({ length: 6 }, (_, i) => change('CREATE', multiValueA(NAME, `n${i}`, `10.0.0.${i + 1}`)));
      for (const t of targets()) await send(t, batch);
      const start = { StartRecordName: NAME, StartRecordType: 'A' as const, MaxItems: 2 };
      const motoPage = await list(motoTarget, { ...start, StartRecordIdentifier: 'n2' });
      assert.equal(motoPage.NextRecordIdentifier, undefined);
      assert.deepEqual(
        motoPage.ResourceRecordSets?.map((s) => s.SetIdentifier),
        ['n0', 'n1'],
        'moto ignores StartRecordIdentifier',
      );
      const doublePage = await list(doubleTarget, { ...start, StartRecordIdentifier: 'n2' });
      assert.deepEqual(
        doublePage.ResourceRecordSets?.map((s) => s.SetIdentifier),
        ['n2', 'n3'],
      );
      assert.equal(doublePage.NextRecordIdentifier, 'n4');
    });

    it('when 80 calls come at once, beyond the documented burst of 50, then moto never throttles while the default double does', async () => {
      const limited = await startRoute53Double({ insyncDelayMs: 0 });
      const limitedClient = route53Client(limited.endpoint);
      try {
        const id = limited.createZone(ZONE);
        const results = await Promise.allSettled(
          Array.from({ length: 80 }, () => limitedClient.send(new GetHostedZoneCommand({ Id: id }))),
        );
        assert.ok(results.some((r) => r.status === 'rejected' && (r.reason as Error).name === 'Throttling'));
        const motoResults = await Promise.allSettled(
          Array.from({ length: 80 }, () => motoTarget.client.send(new GetHostedZoneCommand({ Id: motoTarget.zoneId }))),
        );
        assert.ok(motoResults.every((r) => r.status === 'fulfilled'));
      } finally {
        limitedClient.destroy();
        await limited.stop();
      }
    });

    it('when the apex sets are listed, then moto writes NS values without the trailing dot and SOA as a Python dict', async () => {
      const [ns, soa] = await sets(motoTarget);
      assert.ok(ns?.ResourceRecords?.every((r) => !r.Value?.endsWith('.')));
      assert.match(soa?.ResourceRecords?.[0]?.Value ?? '', /^\{'Value': '.*'\}$/);
      const [doubleNs] = await sets(doubleTarget);
      assert.ok(doubleNs?.ResourceRecords?.every((r) => r.Value?.endsWith('.')));
    });
  });
});

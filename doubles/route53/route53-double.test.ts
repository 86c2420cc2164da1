// The Route53 double, driven by the real @aws-sdk/client-route-53: one test
// per AWS rule the watcher depends on, plus the test controls.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
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
  type ResourceRecordSet,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import { DOCUMENTED_LIMITS, LEGACY_LIMITS, startRoute53Double, type Route53Double } from './server.ts';
import { change, multiValueA, rejectsWithAws, route53Client } from './sdk.ts';

const ZONE = 'play.example.com';
const NAME = 'api.play.example.com.';

describe('Route53 double', () => {
  let double: Route53Double;
  let client: Route53Client;
  let zoneId: string;

  const changeBatch = (changes: Change[], c: Route53Client = client) =>
    c.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: zoneId, ChangeBatch: { Changes: changes } }));
  const list = async (): Promise<ResourceRecordSet[]> =>
    (await client.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }))).ResourceRecordSets ?? [];
  const find = async (name: string, type: string, setIdentifier?: string): Promise<ResourceRecordSet | undefined> =>
    (await list()).find((s) => s.Name === name && s.Type === type && s.SetIdentifier === setIdentifier);

  before(async () => {
    // The limit has its own tests; elsewhere it would only slow the SDK's retries down.
    double = await startRoute53Double({ rateLimit: false, insyncDelayMs: 100 });
    client = route53Client(double.endpoint);
  });
  after(async () => {
    client.destroy();
    await double.stop();
  });
  beforeEach(() => {
    double.reset();
    zoneId = double.createZone(ZONE);
  });

  describe('hosted zones', () => {
    it('when a zone is created, then it holds exactly its SOA and NS sets at the apex', async () => {
      const sets = await list();
      assert.deepEqual(
        sets.map((s) => [s.Name, s.Type]),
        [
          ['play.example.com.', 'NS'],
          ['play.example.com.', 'SOA'],
        ],
      );
      assert.equal(sets[0]?.ResourceRecords?.length, 4);
      assert.match(
        sets[1]?.ResourceRecords?.[0]?.Value ?? '',
        /^ns-\d+\.awsdns-\d+\.com\. awsdns-hostmaster\.amazon\.com\. 1 7200 900 1209600 86400$/,
      );
    });

    it('when GetHostedZone and ListHostedZonesByName are called, then they describe the zone as AWS does', async () => {
      const got = await client.send(new GetHostedZoneCommand({ Id: `/hostedzone/${zoneId}` }));
      assert.equal(got.HostedZone?.Id, `/hostedzone/${zoneId}`);
      assert.equal(got.HostedZone?.Name, 'play.example.com.');
      assert.equal(got.HostedZone?.ResourceRecordSetCount, 2);
      assert.equal(got.DelegationSet?.NameServers?.length, 4);
      double.createZone('other.example.org');
      const byName = await client.send(new ListHostedZonesByNameCommand({ DNSName: 'play.example.com' }));
      assert.deepEqual(
        byName.HostedZones?.map((z) => z.Name),
        ['play.example.com.', 'other.example.org.'],
      );
      assert.equal(byName.IsTruncated, false);
    });

    it('when CreateHostedZone is called through the SDK, then the zone exists with a PENDING change', async () => {
      const created = await client.send(new CreateHostedZoneCommand({ Name: 'new.example.net', CallerReference: 'ref-1' }));
      assert.match(created.HostedZone?.Id ?? '', /^\/hostedzone\/Z[A-Z0-9]+$/);
      assert.equal(created.ChangeInfo?.Status, 'PENDING');
      assert.equal(created.Location, `https://route53.amazonaws.com/2013-04-01/hostedzone/${created.HostedZone?.Id?.split('/')[2]}`);
      await rejectsWithAws(client.send(new CreateHostedZoneCommand({ Name: 'again.example.net', CallerReference: 'ref-1' })), {
        name: 'HostedZoneAlreadyExists',
        status: 409,
      });
    });

    it('when a zone id is unknown, then NoSuchHostedZone comes back with HTTP 404', async () => {
      await rejectsWithAws(client.send(new GetHostedZoneCommand({ Id: 'ZNOSUCHZONE' })), {
        name: 'NoSuchHostedZone',
        status: 404,
        message: 'No hosted zone found with ID: ZNOSUCHZONE',
      });
      zoneId = 'ZNOSUCHZONE';
      await rejectsWithAws(changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]), { name: 'NoSuchHostedZone', status: 404 });
    });
  });

  describe('names and keys', () => {
    it('when names arrive in mixed case without a trailing dot, then they are stored lowercase and absolute', async () => {
      await changeBatch([
        change('CREATE', { Name: 'WWW.Play.Example.COM', Type: 'A', TTL: 60, ResourceRecords: [{ Value: '192.0.2.1' }] }),
      ]);
      assert.ok(await find('www.play.example.com.', 'A'));
    });

    it('when a wildcard is created, then it is listed as \\052 and can be deleted by either spelling', async () => {
      const wildcard: ResourceRecordSet = {
        Name: '*.edge.play.example.com',
        Type: 'A',
        TTL: 60,
        ResourceRecords: [{ Value: '192.0.2.2' }],
      };
      await changeBatch([change('CREATE', wildcard)]);
      assert.ok(await find('\\052.edge.play.example.com.', 'A'));
      await changeBatch([change('DELETE', { ...wildcard, Name: '\\052.edge.play.example.com.' })]);
      assert.equal(await find('\\052.edge.play.example.com.', 'A'), undefined);
    });

    it('when two multivalue sets share name and type, then their SetIdentifiers keep them apart', async () => {
      await changeBatch([
        change('CREATE', multiValueA(NAME, 'node-1', '10.0.0.1')),
        change('CREATE', multiValueA(NAME, 'node-2', '10.0.0.2')),
      ]);
      const sets = (await list()).filter((s) => s.Name === NAME);
      assert.deepEqual(
        sets.map((s) => [s.SetIdentifier, s.MultiValueAnswer, s.ResourceRecords?.[0]?.Value]),
        [
          ['node-1', true, '10.0.0.1'],
          ['node-2', true, '10.0.0.2'],
        ],
      );
    });
  });

  describe('actions', () => {
    it('when CREATE names an existing set, then InvalidChangeBatch says it already exists', async () => {
      await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      const error = await rejectsWithAws(changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.9'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: `[Tried to create resource record set [name='${NAME}', type='A', set-identifier='a'] but it already exists]`,
      });
      assert.equal(error.$fault, 'client');
    });

    it('when DELETE names a set that does not exist, then InvalidChangeBatch says it was not found', async () => {
      await rejectsWithAws(changeBatch([change('DELETE', multiValueA(NAME, 'gone', '10.0.0.1'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: `[Tried to delete resource record set [name='${NAME}', type='A', set-identifier='gone'] but it was not found]`,
      });
      await rejectsWithAws(changeBatch([change('DELETE', { Name: NAME, Type: 'TXT', TTL: 60, ResourceRecords: [{ Value: '"x"' }] })]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: `[Tried to delete resource record set [name='${NAME}', type='TXT'] but it was not found]`,
      });
    });

    it('when DELETE differs from the current set in TTL, value or MultiValueAnswer, then InvalidChangeBatch says the values do not match', async () => {
      await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1', 60))]);
      const mismatch = `[Tried to delete resource record set [name='${NAME}', type='A', set-identifier='a'] but the values provided do not match the current values]`;
      for (const stale of [
        multiValueA(NAME, 'a', '10.0.0.1', 300),
        multiValueA(NAME, 'a', '10.0.0.2', 60),
        { ...multiValueA(NAME, 'a', '10.0.0.1'), MultiValueAnswer: false },
      ]) {
        await rejectsWithAws(changeBatch([change('DELETE', stale)]), { name: 'InvalidChangeBatch', status: 400, message: mismatch });
      }
      await changeBatch([change('DELETE', multiValueA(NAME, 'a', '10.0.0.1', 60))]);
      assert.equal(await find(NAME, 'A', 'a'), undefined);
    });

    it('when DELETE carries the values from before an UPSERT, then it fails against the current set', async () => {
      await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      await changeBatch([change('UPSERT', multiValueA(NAME, 'a', '10.0.0.2'))]);
      await rejectsWithAws(changeBatch([change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: /do not match the current values/,
      });
    });

    it('when UPSERT names a missing set, then it creates it, and when the set exists, then it replaces it', async () => {
      await changeBatch([change('UPSERT', multiValueA(NAME, 'a', '10.0.0.1'))]);
      assert.equal((await find(NAME, 'A', 'a'))?.ResourceRecords?.[0]?.Value, '10.0.0.1');
      await changeBatch([change('UPSERT', multiValueA(NAME, 'a', '10.0.0.2', 30))]);
      const replaced = await find(NAME, 'A', 'a');
      assert.deepEqual([replaced?.TTL, replaced?.ResourceRecords], [30, [{ Value: '10.0.0.2' }]]);
      assert.equal((await list()).filter((s) => s.Name === NAME).length, 1);
    });
  });

  describe('batches', () => {
    it('when one change in a batch fails, then none is applied and every failure is listed', async () => {
      await changeBatch([change('CREATE', multiValueA(NAME, 'keep', '10.0.0.1'))]);
      const before = double.records(zoneId);
      await rejectsWithAws(
        changeBatch([
          change('CREATE', multiValueA(NAME, 'new', '10.0.0.2')),
          change('UPSERT', multiValueA(NAME, 'keep', '10.0.0.9')),
          change('DELETE', multiValueA(NAME, 'missing', '10.0.0.3')),
          change('CREATE', multiValueA('x.other.org', 'o', '10.0.0.5')),
        ]),
        {
          name: 'InvalidChangeBatch',
          status: 400,
          message: `[Tried to delete resource record set [name='${NAME}', type='A', set-identifier='missing'] but it was not found, RRSet with DNS name x.other.org. is not permitted in zone play.example.com.]`,
        },
      );
      assert.deepEqual(double.records(zoneId), before);
    });

    it('when the same set is changed twice in one batch, then InvalidChangeBatch rejects it, except DELETE then CREATE', async () => {
      await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      const twice = `[The request contains an invalid set of changes for a resource record set 'A ${NAME}']`;
      await rejectsWithAws(
        changeBatch([change('DELETE', multiValueA(NAME, 'a', '10.0.0.1')), change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]),
        {
          name: 'InvalidChangeBatch',
          status: 400,
          message: twice,
        },
      );
      await rejectsWithAws(
        changeBatch([change('UPSERT', multiValueA(NAME, 'a', '10.0.0.2')), change('UPSERT', multiValueA(NAME, 'a', '10.0.0.3'))]),
        {
          name: 'InvalidChangeBatch',
          status: 400,
          message: twice,
        },
      );
      await changeBatch([change('DELETE', multiValueA(NAME, 'a', '10.0.0.1')), change('CREATE', multiValueA(NAME, 'a', '10.0.0.4'))]);
      assert.equal((await find(NAME, 'A', 'a'))?.ResourceRecords?.[0]?.Value, '10.0.0.4');
    });

    it('when a CNAME would sit beside another type at one name, then InvalidChangeBatch rejects it in either order', async () => {
      await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      await rejectsWithAws(
        changeBatch([change('CREATE', { Name: NAME, Type: 'CNAME', TTL: 60, ResourceRecords: [{ Value: 'elsewhere.example.com' }] })]),
        {
          name: 'InvalidChangeBatch',
          status: 400,
          message: `[RRSet of type CNAME with DNS name ${NAME} is not permitted as it conflicts with other records with the same DNS name in zone play.example.com.]`,
        },
      );
      await changeBatch([
        change('CREATE', { Name: 'c.play.example.com', Type: 'CNAME', TTL: 60, ResourceRecords: [{ Value: 'elsewhere.example.com' }] }),
      ]);
      await rejectsWithAws(
        changeBatch([change('CREATE', { Name: 'c.play.example.com', Type: 'TXT', TTL: 60, ResourceRecords: [{ Value: '"x"' }] })]),
        {
          name: 'InvalidChangeBatch',
          status: 400,
          message:
            '[RRSet of type TXT with DNS name c.play.example.com. is not permitted because a conflicting RRSet of type CNAME with the same DNS name already exists in zone play.example.com.]',
        },
      );
    });

    it('when a name lies outside the zone, then InvalidChangeBatch says it is not permitted in the zone', async () => {
      await rejectsWithAws(changeBatch([change('CREATE', multiValueA('api.example.org', 'a', '10.0.0.1'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: '[RRSet with DNS name api.example.org. is not permitted in zone play.example.com.]',
      });
    });

    it('when a simple set exists, then a multivalue set of the same name and type is refused', async () => {
      await changeBatch([change('CREATE', { Name: NAME, Type: 'A', TTL: 60, ResourceRecords: [{ Value: '10.0.0.1' }] })]);
      await rejectsWithAws(changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.2'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: /cannot be created as other RRSets exist with the same name and type/,
      });
    });
  });

  describe('record set shape', () => {
    it('when MultiValueAnswer has no SetIdentifier, then InvalidInput says the field is missing', async () => {
      await rejectsWithAws(
        changeBatch([
          change('CREATE', { Name: NAME, Type: 'A', MultiValueAnswer: true, TTL: 60, ResourceRecords: [{ Value: '10.0.0.1' }] }),
        ]),
        {
          name: 'InvalidInput',
          status: 400,
          message: `Invalid request: Missing field 'SetIdentifier' in Change with [Action=CREATE, Name=${NAME}, Type=A, SetIdentifier=null]`,
        },
      );
    });

    it('when MultiValueAnswer is combined with Weight, then InvalidInput rejects the second routing policy', async () => {
      await rejectsWithAws(changeBatch([change('CREATE', { ...multiValueA(NAME, 'a', '10.0.0.1'), Weight: 10 })]), {
        name: 'InvalidInput',
        status: 400,
        message: /found more than one in Change with \[Action=CREATE/,
      });
    });

    it('when an alias record asks for MultiValueAnswer, then InvalidInput rejects it', async () => {
      const alias: ResourceRecordSet = {
        Name: NAME,
        Type: 'A',
        SetIdentifier: 'a',
        MultiValueAnswer: true,
        AliasTarget: { HostedZoneId: zoneId, DNSName: 'lb.play.example.com', EvaluateTargetHealth: false },
      };
      await rejectsWithAws(changeBatch([change('CREATE', alias)]), { name: 'InvalidInput', status: 400, message: /MultiValueAnswer/ });
    });

    it('when A holds a non-IPv4 value or AAAA a non-IPv6 value, then InvalidChangeBatch names the bad value', async () => {
      await rejectsWithAws(changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message:
          "[Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with '10.0.0'']",
      });
      await rejectsWithAws(
        changeBatch([change('CREATE', { Name: NAME, Type: 'AAAA', TTL: 60, ResourceRecords: [{ Value: '10.0.0.1' }] })]),
        {
          name: 'InvalidChangeBatch',
          status: 400,
          message: /AAAARRDATAIllegalIPv6Address .* encountered with '10\.0\.0\.1'/,
        },
      );
      await changeBatch([change('CREATE', { Name: NAME, Type: 'AAAA', TTL: 60, ResourceRecords: [{ Value: '2001:db8::1' }] })]);
    });

    it('when AAAA carries a zone index (fe80::1%eth0), then InvalidChangeBatch refuses it and the good change beside it is not applied', async () => {
      const scoped: ResourceRecordSet = { ...multiValueA(NAME, 'scoped', 'fe80::1%eth0'), Type: 'AAAA' };
      await rejectsWithAws(changeBatch([change('CREATE', multiValueA(NAME, 'good', '10.0.0.1')), change('CREATE', scoped)]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: /AAAARRDATAIllegalIPv6Address .* encountered with 'fe80::1%eth0'/,
      });
      assert.equal(await find(NAME, 'A', 'good'), undefined, 'a batch is all-or-nothing');
    });

    it('when A holds 0.0.0.0, 127.0.0.1 or 255.255.255.255, then Route53 accepts them (refusing them is the watcher’s policy, not AWS’s)', async () => {
      const values = ['0.0.0.0', '127.0.0.1', '255.255.255.255'];
      await changeBatch(values.map((ip, i) => change('CREATE', multiValueA(NAME, `n${i}`, ip))));
      const listed = (await list()).filter((s) => s.Name === NAME).map((s) => s.ResourceRecords?.[0]?.Value);
      assert.deepEqual(listed.sort(), [...values].sort());
    });

    it('when a SetIdentifier is longer than 128 characters, then InvalidInput names the schema facet and nothing in the batch is applied', async () => {
      const long = 'x'.repeat(310);
      const error = await rejectsWithAws(
        changeBatch([change('CREATE', multiValueA(NAME, 'good', '10.0.0.1')), change('CREATE', multiValueA(NAME, long, '10.0.0.2'))]),
        {
          name: 'InvalidInput',
          status: 400,
          message: `Invalid XML ; cvc-maxLength-valid: Value '${long}' with length = '310' is not facet-valid with respect to maxLength '128' for type 'ResourceRecordSetIdentifier'.`,
        },
      );
      assert.equal(error.$fault, 'client');
      assert.equal(await find(NAME, 'A', 'good'), undefined);
      // The boundary: exactly 128 characters (counted as code points, as XML Schema does) is accepted.
      const edge = `${'é'.repeat(127)}x`;
      await changeBatch([change('CREATE', multiValueA(NAME, edge, '10.0.0.3'))]);
      assert.ok((await find(NAME, 'A', edge)) !== undefined);
    });

    it('when a SetIdentifier is empty, then InvalidInput names the minLength facet', async () => {
      await rejectsWithAws(changeBatch([change('CREATE', multiValueA(NAME, '', '10.0.0.1'))]), {
        name: 'InvalidInput',
        status: 400,
        message:
          /cvc-minLength-valid: Value '' with length = '0' is not facet-valid with respect to minLength '1' for type 'ResourceRecordSetIdentifier'/,
      });
    });

    it('when a SetIdentifier holds a slash or a newline, then the double accepts it (AWS documents no character rule; see the README)', async () => {
      await changeBatch([
        change('CREATE', multiValueA(NAME, 'st-api/slash/node', '10.0.0.1')),
        change('CREATE', multiValueA(NAME, 'line\nbreak', '10.0.0.2')),
      ]);
      assert.ok((await find(NAME, 'A', 'st-api/slash/node')) !== undefined);
      assert.ok((await find(NAME, 'A', 'line\nbreak')) !== undefined, 'the newline survives the XML round trip');
    });

    it('when a non-alias set has no TTL, then InvalidInput says TTL and ResourceRecords are expected', async () => {
      await rejectsWithAws(changeBatch([change('CREATE', { Name: NAME, Type: 'A', ResourceRecords: [{ Value: '10.0.0.1' }] })]), {
        name: 'InvalidInput',
        status: 400,
        message: `Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with [Action=CREATE, Name=${NAME}, Type=A, SetIdentifier=null]`,
      });
    });
  });

  describe('limits', () => {
    const sets = (n: number, prefix: string): ResourceRecordSet[] =>
      Array.from({ length: n }, (_, i) => multiValueA(NAME, `${prefix}-${i}`, `10.${(i >> 8) & 255}.${i & 255}.1`));

    it('when a batch holds more than 1000 ResourceRecord elements, counting UPSERT twice, then InvalidChangeBatch says the limit was exceeded', async () => {
      const tooMany = { name: 'InvalidChangeBatch', status: 400, message: '[Number of records limit of 1000 exceeded.]' };
      await rejectsWithAws(changeBatch(sets(1001, 'c').map((s) => change('CREATE', s))), tooMany);
      await rejectsWithAws(changeBatch(sets(501, 'u').map((s) => change('UPSERT', s))), tooMany);
      assert.equal(double.records(zoneId).length, 2);
      await changeBatch(sets(500, 'u').map((s) => change('UPSERT', s)));
      await changeBatch(sets(1000, 'c').map((s) => change('CREATE', s)));
      assert.equal(double.records(zoneId).length, 1502);
    });

    it('when the Values in a batch exceed 32,000 characters, counting UPSERT twice, then InvalidChangeBatch says the RDATA limit was exceeded', async () => {
      const txt = (i: number, length: number): ResourceRecordSet => ({
        Name: `t${i}.play.example.com`,
        Type: 'TXT',
        TTL: 60,
        ResourceRecords: [{ Value: `"${'x'.repeat(length - 2)}"` }],
      });
      const tooLong = { name: 'InvalidChangeBatch', status: 400, message: '[RDATA character limit of 32000 exceeded.]' };
      // 130 × 250 = 32,500 characters.
      await rejectsWithAws(changeBatch(Array.from({ length: 130 }, (_, i) => change('CREATE', txt(i, 250)))), tooLong);
      // 64 × 250 = 16,000 characters, doubled by UPSERT.
      await changeBatch(Array.from({ length: 64 }, (_, i) => change('UPSERT', txt(i, 250))));
      await rejectsWithAws(changeBatch(Array.from({ length: 65 }, (_, i) => change('UPSERT', txt(i, 250)))), tooLong);
    });
  });

  describe('listing', () => {
    it('when 700 multivalue sets share a name, then paging with NextRecordIdentifier returns each exactly once in order', async () => {
      const all = Array.from({ length: 700 }, (_, i) =>
        multiValueA(NAME, `node-${String(i).padStart(3, '0')}`, `10.0.${i >> 8}.${i & 255}`),
      );
      await changeBatch(all.map((s) => change('CREATE', s)));

      const firstDefault = await client.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
      assert.equal(firstDefault.ResourceRecordSets?.length, 300, 'MaxItems defaults to 300');
      assert.equal(firstDefault.IsTruncated, true);

      const seen: string[] = [];
      let start: { StartRecordName?: string; StartRecordType?: ResourceRecordSet['Type']; StartRecordIdentifier?: string } = {};
      let pages = 0;
      while (pages < 20) {
        pages++;
        const page = await client.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId, MaxItems: 100, ...start }));
        for (const s of page.ResourceRecordSets ?? []) seen.push(`${s.Name} ${s.Type} ${s.SetIdentifier ?? ''}`);
        if (page.IsTruncated !== true) break;
        assert.ok(page.NextRecordIdentifier, 'a page that ends inside the multivalue set carries NextRecordIdentifier');
        start = {
          StartRecordName: page.NextRecordName ?? '',
          StartRecordType: page.NextRecordType,
          StartRecordIdentifier: page.NextRecordIdentifier,
        };
      }
      assert.equal(pages, 8);
      assert.equal(seen.length, 702);
      assert.equal(new Set(seen).size, 702);
      assert.deepEqual(
        seen.slice(2),
        all.map((s) => `${NAME} A ${s.SetIdentifier ?? ''}`),
      );
    });

    it('when StartRecordName and StartRecordType are given, then listing starts at that name and type in reversed-label order', async () => {
      await changeBatch([
        change('CREATE', { Name: 'b.play.example.com', Type: 'TXT', TTL: 60, ResourceRecords: [{ Value: '"b"' }] }),
        change('CREATE', { Name: 'b.play.example.com', Type: 'A', TTL: 60, ResourceRecords: [{ Value: '10.0.0.2' }] }),
        change('CREATE', { Name: 'a.play.example.com', Type: 'A', TTL: 60, ResourceRecords: [{ Value: '10.0.0.1' }] }),
        change('CREATE', { Name: 'x.a.play.example.com', Type: 'A', TTL: 60, ResourceRecords: [{ Value: '10.0.0.3' }] }),
      ]);
      const page = await client.send(
        new ListResourceRecordSetsCommand({
          HostedZoneId: zoneId,
          StartRecordName: 'a.play.example.com',
          StartRecordType: 'A',
          MaxItems: 3,
        }),
      );
      assert.deepEqual(
        page.ResourceRecordSets?.map((s) => `${s.Name} ${s.Type}`),
        ['a.play.example.com. A', 'x.a.play.example.com. A', 'b.play.example.com. A'],
      );
      assert.deepEqual(
        [page.IsTruncated, page.NextRecordName, page.NextRecordType, page.NextRecordIdentifier],
        [true, 'b.play.example.com.', 'TXT', undefined],
      );
      assert.equal(page.MaxItems, 3);
    });
  });

  describe('changes', () => {
    it('when a batch is accepted, then its change is PENDING, then INSYNC, and GetChange and the SDK waiter agree', async () => {
      const first = await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      const second = await changeBatch([change('CREATE', multiValueA(NAME, 'b', '10.0.0.2'))]);
      assert.match(first.ChangeInfo?.Id ?? '', /^\/change\/C[A-Z0-9]+$/);
      assert.notEqual(first.ChangeInfo?.Id, second.ChangeInfo?.Id);
      assert.equal(first.ChangeInfo?.Status, 'PENDING');
      assert.ok(first.ChangeInfo?.SubmittedAt instanceof Date);
      const id = first.ChangeInfo?.Id ?? '';
      assert.equal((await client.send(new GetChangeCommand({ Id: id }))).ChangeInfo?.Status, 'PENDING');
      const waited = await waitUntilResourceRecordSetsChanged({ client, maxWaitTime: 10, minDelay: 1, maxDelay: 1 }, { Id: id });
      assert.equal(waited.state, 'SUCCESS');
      const insync = await client.send(new GetChangeCommand({ Id: id }));
      assert.deepEqual([insync.ChangeInfo?.Id, insync.ChangeInfo?.Status], [id, 'INSYNC']);
    });

    it('when GetChange asks for an unknown id, then NoSuchChange comes back with HTTP 404', async () => {
      await rejectsWithAws(client.send(new GetChangeCommand({ Id: '/change/CNOSUCHCHANGE' })), { name: 'NoSuchChange', status: 404 });
    });

    it('when a second batch arrives while the first is PENDING, then it is accepted by default', async () => {
      const first = await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      assert.equal(first.ChangeInfo?.Status, 'PENDING');
      await changeBatch([change('CREATE', multiValueA(NAME, 'b', '10.0.0.2'))]);
    });

    it('when rejectChangesWhilePending is on and the zone has a PENDING change, then PriorRequestNotComplete comes back until INSYNC', async () => {
      const strict = await startRoute53Double({ rateLimit: false, insyncDelayMs: 300, rejectChangesWhilePending: true });
      const strictClient = route53Client(strict.endpoint);
      try {
        zoneId = strict.createZone(ZONE);
        // Zone creation is itself a change; wait it out.
        await new Promise((resolve) => setTimeout(resolve, 350));
        await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))], strictClient);
        await rejectsWithAws(changeBatch([change('CREATE', multiValueA(NAME, 'b', '10.0.0.2'))], strictClient), {
          name: 'PriorRequestNotComplete',
          status: 400,
          message: 'The request was rejected because Route 53 was still processing a prior request.',
        });
        await new Promise((resolve) => setTimeout(resolve, 350));
        await changeBatch([change('CREATE', multiValueA(NAME, 'b', '10.0.0.2'))], strictClient);
      } finally {
        strictClient.destroy();
        await strict.stop();
      }
    });
  });

  describe('wire format', () => {
    it('when a call fails, then the body is an AWS ErrorResponse with Type, Code, Message and RequestId', async () => {
      const response = await fetch(`${double.endpoint}/2013-04-01/hostedzone/ZNOPE`, {
        headers: { authorization: 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/route53/aws4_request' },
        signal: AbortSignal.timeout(5_000),
      });
      const body = await response.text();
      assert.equal(response.status, 404);
      assert.match(
        body,
        /^<\?xml version="1\.0"\?>\n<ErrorResponse xmlns="https:\/\/route53\.amazonaws\.com\/doc\/2013-04-01\/"><Error><Type>Sender<\/Type><Code>NoSuchHostedZone<\/Code><Message>No hosted zone found with ID: ZNOPE<\/Message><\/Error><RequestId>[0-9a-f-]{36}<\/RequestId><\/ErrorResponse>$/,
      );
      assert.equal(response.headers.get('x-amzn-requestid'), /<RequestId>(.*)<\/RequestId>/.exec(body)?.[1]);
    });

    it('when the request XML is malformed, then InvalidInput comes back with HTTP 400', async () => {
      const response = await fetch(`${double.endpoint}/2013-04-01/hostedzone/${zoneId}/rrset`, {
        method: 'POST',
        headers: { authorization: 'AWS4-HMAC-SHA256 Credential=testing/x', 'content-type': 'application/xml' },
        body: '<ChangeResourceRecordSetsRequest><ChangeBatch>',
        signal: AbortSignal.timeout(5_000),
      });
      assert.equal(response.status, 400);
      assert.match(await response.text(), /<Code>InvalidInput<\/Code>/);
    });

    it('when AWS_ENDPOINT_URL_ROUTE_53 points at the double, then a client without an endpoint option reaches it', async () => {
      const saved = process.env['AWS_ENDPOINT_URL_ROUTE_53'];
      process.env['AWS_ENDPOINT_URL_ROUTE_53'] = double.endpoint;
      try {
        const envClient = route53Client(undefined);
        const got = await envClient.send(new GetHostedZoneCommand({ Id: zoneId }));
        envClient.destroy();
        assert.equal(got.HostedZone?.Name, 'play.example.com.');
      } finally {
        if (saved === undefined) delete process.env['AWS_ENDPOINT_URL_ROUTE_53'];
        else process.env['AWS_ENDPOINT_URL_ROUTE_53'] = saved;
      }
    });
  });

  describe('rate limit', () => {
    /** Sends `count` calls at once; returns how many were answered, how many Throttling, and how long it took. */
    async function flood(
      send: () => Promise<unknown>,
      count: number,
    ): Promise<{ ok: number; throttled: number; seconds: number; firstThrottled: Error | undefined }> {
      const started = Date.now();
      const results = await Promise.allSettled(Array.from({ length: count }, send));
      const seconds = (Date.now() - started) / 1000;
      for (const r of results) if (r.status === 'rejected' && (r.reason as Error).name !== 'Throttling') throw r.reason;
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      const firstThrottled = results.find((r) => r.status === 'rejected');
      return {
        ok,
        throttled: count - ok,
        seconds,
        firstThrottled: firstThrottled?.status === 'rejected' ? (firstThrottled.reason as Error) : undefined,
      };
    }

    it('when one account sends 80 requests at once, then about the documented burst of 50 pass, the rest get Throttling "Rate exceeded", and another account is unaffected', async () => {
      const limited = await startRoute53Double({ insyncDelayMs: 0 });
      const a = route53Client(limited.endpoint, { accessKeyId: 'ACCOUNT-A' });
      const b = route53Client(limited.endpoint, { accessKeyId: 'ACCOUNT-B' });
      try {
        const id = limited.createZone(ZONE);
        const get = (c: Route53Client) => () => c.send(new GetHostedZoneCommand({ Id: id }));
        const { ok, throttled, seconds, firstThrottled } = await flood(get(a), 80);
        // 50 at once plus 10 per second of refill while the flood lasted: a busy machine only lets more through.
        assert.ok(ok >= 50 && ok <= 50 + Math.ceil(10 * seconds), `${ok} passed in ${seconds} s`);
        assert.ok(throttled >= 1 && firstThrottled !== undefined);
        // One of the flood's own refusals: a call sent after it could find a token refilled (one per
        // 100 ms) when the machine is busy.
        await rejectsWithAws(Promise.reject(firstThrottled), { name: 'Throttling', status: 400, message: 'Rate exceeded' });
        await get(b)();
        const calls = limited.calls();
        assert.ok(calls.filter((c) => c.errorCode === 'Throttling').every((c) => c.throttledBy === 'account' && c.status === 400));
      } finally {
        a.destroy();
        b.destroy();
        await limited.stop();
      }
    });

    it('when CreateHostedZone exhausts its own bucket (40 / 2 per second), then it is throttled while other operations still pass', async () => {
      const limited = await startRoute53Double({ insyncDelayMs: 0 });
      const c = route53Client(limited.endpoint);
      try {
        let reference = 0;
        const create = () =>
          c.send(new CreateHostedZoneCommand({ Name: `z${reference}.example.com`, CallerReference: `ref-${++reference}` }));
        const { ok, seconds } = await flood(create, 45);
        assert.ok(ok >= 40 && ok <= 40 + Math.ceil(2 * seconds), `${ok} passed in ${seconds} s`);
        const byOperation = limited
          .calls()
          .filter((call) => call.errorCode === 'Throttling')
          .map((call) => call.throttledBy);
        assert.ok(byOperation.length >= 1 && byOperation.every((bucket) => bucket === 'operation'), String(byOperation));
        // The account bucket still holds tokens: other operations are answered.
        await c.send(new ListHostedZonesByNameCommand({}));
      } finally {
        c.destroy();
        await limited.stop();
      }
    });

    it('when a change-throughput bucket is configured, then a batch with more changes than its tokens is throttled whole, and a smaller one passes', async () => {
      // Sizes here are the test's own: AWS's change-throughput figures are not in our sources (README).
      const limited = await startRoute53Double({
        insyncDelayMs: 0,
        rateLimit: { ...DOCUMENTED_LIMITS, changes: { capacity: 10, refillPerSecond: 0.1 } },
      });
      const c = route53Client(limited.endpoint);
      try {
        const id = limited.createZone(ZONE);
        const batch = (from: number, count: number) =>
          c.send(
            new ChangeResourceRecordSetsCommand({
              HostedZoneId: id,
              ChangeBatch: {
                Changes: Array.from({ length: count }, (_, i) =>
                  change('CREATE', multiValueA(NAME, `n${from + i}`, `10.0.0.${from + i + 1}`)),
                ),
              },
            }),
          );
        await batch(0, 8);
        await rejectsWithAws(batch(8, 5), { name: 'Throttling', status: 400, message: 'Rate exceeded' });
        await batch(8, 2);
        const sets = limited.records(id).filter((s) => s.SetIdentifier !== undefined);
        assert.equal(sets.length, 10, 'the throttled batch applied nothing');
        assert.deepEqual(
          limited.calls().map((call) => [call.changeCount, call.throttledBy ?? 'ok']),
          [
            [8, 'ok'],
            [5, 'changes'],
            [2, 'ok'],
          ],
        );
      } finally {
        c.destroy();
        await limited.stop();
      }
    });

    it('when the legacy limit is chosen, then one account gets 5 requests at once and the rest are throttled', async () => {
      const limited = await startRoute53Double({ insyncDelayMs: 0, rateLimit: LEGACY_LIMITS });
      const c = route53Client(limited.endpoint);
      try {
        const id = limited.createZone(ZONE);
        const { ok, seconds } = await flood(() => c.send(new GetHostedZoneCommand({ Id: id })), 20);
        assert.ok(ok >= 5 && ok <= 5 + Math.ceil(5 * seconds), `${ok} passed in ${seconds} s`);
      } finally {
        c.destroy();
        await limited.stop();
      }
    });
  });

  describe('faults', () => {
    it('when Throttling is injected for the next 2 calls, then the SDK retries and the call log shows all 3 attempts', async () => {
      double.injectFault({ kind: 'throttling', operation: 'ListResourceRecordSets', count: 2 });
      const retrying = route53Client(double.endpoint, { maxAttempts: 3 });
      try {
        const result = await retrying.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
        assert.equal(result.$metadata.attempts, 3);
      } finally {
        retrying.destroy();
      }
      assert.deepEqual(
        double.calls().map((c) => [c.operation, c.errorCode, c.fault]),
        [
          ['ListResourceRecordSets', 'Throttling', 'throttling'],
          ['ListResourceRecordSets', 'Throttling', 'throttling'],
          ['ListResourceRecordSets', undefined, undefined],
        ],
      );
    });

    it('when PriorRequestNotComplete is injected, then the next change batch gets it and applies nothing', async () => {
      double.injectFault({ kind: 'priorRequestNotComplete', operation: 'ChangeResourceRecordSets' });
      await rejectsWithAws(changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]), {
        name: 'PriorRequestNotComplete',
        status: 400,
      });
      assert.equal(await find(NAME, 'A', 'a'), undefined);
      await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
    });

    it('when InternalFailure is injected, then the SDK sees a 500 server fault', async () => {
      double.injectFault({ kind: 'internalFailure', operation: 'GetChange' });
      const error = await rejectsWithAws(client.send(new GetChangeCommand({ Id: 'CANY' })), { name: 'InternalFailure', status: 500 });
      assert.equal(error.$fault, 'server');
    });

    it('when latency is injected, then the answer is delayed by at least that long', async () => {
      double.injectFault({ kind: 'latency', ms: 300, operation: 'GetHostedZone' });
      const started = Date.now();
      await client.send(new GetHostedZoneCommand({ Id: zoneId }));
      assert.ok(Date.now() - started >= 290, `took ${Date.now() - started} ms`);
      const again = Date.now();
      await client.send(new GetHostedZoneCommand({ Id: zoneId }));
      assert.ok(Date.now() - again < 250, 'only the next call is slowed');
    });

    it('when an InvalidChangeBatch is injected, then the next batch fails with those messages and applies nothing', async () => {
      double.injectFault({ kind: 'invalidChangeBatch', messages: ['first problem', 'second problem'] });
      await rejectsWithAws(changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: '[first problem, second problem]',
      });
      assert.equal(await find(NAME, 'A', 'a'), undefined);
    });

    it('when a record is deleted by hand, then a DELETE from stale state fails as not found', async () => {
      await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      assert.equal(double.deleteRecord(zoneId, { name: NAME, type: 'A', setIdentifier: 'a' }), true);
      await rejectsWithAws(changeBatch([change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: /was not found/,
      });
    });

    it('when a record is edited by hand, then a DELETE with the old values fails as not matching', async () => {
      await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1'))]);
      double.setRecord(zoneId, multiValueA(NAME, 'a', '10.0.0.99'));
      await rejectsWithAws(changeBatch([change('DELETE', multiValueA(NAME, 'a', '10.0.0.1'))]), {
        name: 'InvalidChangeBatch',
        status: 400,
        message: /do not match/,
      });
    });

    it('when calls are made, then the log records operation, zone, time and change count, and reset() empties everything', async () => {
      const t0 = Date.now();
      await changeBatch([change('CREATE', multiValueA(NAME, 'a', '10.0.0.1')), change('CREATE', multiValueA(NAME, 'b', '10.0.0.2'))]);
      await list();
      const calls = double.calls();
      assert.deepEqual(
        calls.map((c) => [c.operation, c.zoneId, c.changeCount, c.status]),
        [
          ['ChangeResourceRecordSets', zoneId, 2, 200],
          ['ListResourceRecordSets', zoneId, 0, 200],
        ],
      );
      assert.ok(calls.every((c) => c.at >= t0 && c.at <= Date.now()));
      double.reset();
      assert.deepEqual(double.calls(), []);
      await rejectsWithAws(client.send(new GetHostedZoneCommand({ Id: zoneId })), { name: 'NoSuchHostedZone', status: 404 });
    });
  });

  describe('admin endpoint', () => {
    const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
      const response = await fetch(`${double.endpoint}/_double${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        signal: AbortSignal.timeout(5_000),
      });
      const text = await response.text();
      return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
    };

    it('when driven over HTTP, then zones, records, faults, calls and reset all work without the SDK', async () => {
      const created = await admin('POST', '/zones', { name: 'admin.example.com' });
      assert.equal(created.status, 201);
      const id = (created.json as { zoneId: string }).zoneId;
      assert.equal(
        (
          await admin('PUT', `/zones/${id}/records`, {
            Name: 'x.admin.example.com',
            Type: 'A',
            TTL: 5,
            ResourceRecords: [{ Value: '10.1.1.1' }],
          })
        ).status,
        204,
      );
      const records = (await admin('GET', `/zones/${id}/records`)).json as ResourceRecordSet[];
      assert.deepEqual(
        records.map((r) => r.Name),
        ['admin.example.com.', 'admin.example.com.', 'x.admin.example.com.'],
      );
      assert.equal((await admin('DELETE', `/zones/${id}/records?name=x.admin.example.com&type=A`)).status, 204);
      assert.equal((await admin('DELETE', `/zones/${id}/records?name=x.admin.example.com&type=A`)).status, 404);
      assert.equal((await admin('POST', '/faults', { kind: 'throttling', operation: 'GetHostedZone' })).status, 204);
      assert.equal((await admin('POST', '/faults', { kind: 'nonsense' })).status, 400);
      await rejectsWithAws(client.send(new GetHostedZoneCommand({ Id: id })), { name: 'Throttling', status: 400 });
      const calls = (await admin('GET', '/calls')).json as { operation: string; errorCode: string }[];
      assert.deepEqual(
        calls.map((c) => [c.operation, c.errorCode]),
        [['GetHostedZone', 'Throttling']],
      );
      assert.equal((await admin('POST', '/reset')).status, 204);
      assert.deepEqual((await admin('GET', '/calls')).json, []);
    });
  });

  describe('standalone', () => {
    it('when --help is asked, then 0 and the usage on stdout; an unknown option, 2 with the usage on stderr', () => {
      const main = new URL('./main.ts', import.meta.url).pathname;
      const help = spawnSync(process.execPath, ['--import', 'tsx', main, '--help'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /^Usage: npm run double:route53 -- \[--port N\]/);
      assert.equal(help.stderr, '');
      const unknown = spawnSync(process.execPath, ['--import', 'tsx', main, '--frobnicate'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(unknown.status, 2);
      assert.match(unknown.stderr, /^double:route53: Unknown option '--frobnicate'.*\n\nUsage: npm run double:route53/s);
    });

    it('when started with npm run double:route53 arguments, then it prints the endpoint and zone ids and exits 0 on SIGTERM', async () => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', new URL('./main.ts', import.meta.url).pathname, '--zone', ZONE, '--no-rate-limit'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      let timer: NodeJS.Timeout | undefined;
      try {
        const line = await Promise.race([
          new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve)),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('no line within 20 s')), 20_000);
          }),
        ]);
        const printed = JSON.parse(line) as { endpoint: string; zones: Record<string, string> };
        assert.match(printed.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
        const id = printed.zones[ZONE] ?? '';
        const standaloneClient = route53Client(printed.endpoint);
        const got = await standaloneClient.send(new GetHostedZoneCommand({ Id: id }));
        standaloneClient.destroy();
        assert.equal(got.HostedZone?.Name, 'play.example.com.');
        child.kill('SIGTERM');
        assert.equal(await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 10_000))]), 0);
      } finally {
        clearTimeout(timer);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  });
});

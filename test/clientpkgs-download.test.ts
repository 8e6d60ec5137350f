// Spec 000's client package downloads: the listing, the three path forms and ?pkg=&arch=, the type
// and architecture aliases, the default type (tar), exact names before `<name>-<version>` prefixes
// with the newest version first, and 400s listing the candidates when a name is ambiguous.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareVersions } from '../src/clientpkgs/directory.js';
import { startTestHead } from './helpers/head.js';

test('rpm version order: numbers as numbers, letters below numbers, ~ before and ^ after', (t) => {
  const ordered = ['1.0~rc1', '1.0', '1.0^git1', '1.0a', '1.0.1', '1.2', '1.10', '2'];
  for (let i = 0; i < ordered.length - 1; i++) {
    t.is(compareVersions(ordered[i]!, ordered[i + 1]!), -1, `${ordered[i]} < ${ordered[i + 1]}`);
    t.is(compareVersions(ordered[i + 1]!, ordered[i]!), 1, `${ordered[i + 1]} > ${ordered[i]}`);
  }
  t.is(compareVersions('1.01', '1.1'), 0);
});

test('the download endpoints list and send packages by spec 000\'s rules', async (t) => {
  const h = await startTestHead(t);
  const dir = join(h.dataDir, 'clientpkgs');
  const files: Record<string, string> = {
    'rpm/keel-agent-1.2-1.x86_64.rpm': 'agent 1.2 x86_64',
    'rpm/keel-agent-1.10-1.x86_64.rpm': 'agent 1.10 x86_64',
    'rpm/keel-agent-1.10-1.aarch64.rpm': 'agent 1.10 aarch64',
    'rpm/keel-agent-tools-3.0-1.noarch.rpm': 'tools 3.0',
    'rpm/other-2.0-1.x86_64.rpm': 'other 2.0',
    'rpm/other-extras-2.0-1.x86_64.rpm': 'other-extras 2.0',
    'rpm/site-agent-1.0-1.x86_64.rpm': 'site agent',
    'rpm/site-monitor-1.0-1.x86_64.rpm': 'site monitor',
    'deb/keel-agent_1.10-1_amd64.deb': 'agent deb amd64',
    'deb/keel-agent_1.10-1_arm64.deb': 'agent deb arm64',
    'tar/site-tools-0.9-1.noarch.tar.gz': 'site tar',
  };
  for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
  const body = async (path: string) => {
    const res = await fetch(`${h.base}${path}`);
    return { status: res.status, text: await res.text(), disposition: res.headers.get('content-disposition') };
  };

  const listing = (await h.call('GET', '/install/client/download')).json.data as Record<string, { name: string; size: number; note?: string }[]>;
  t.deepEqual(listing.deb, [{ name: 'keel-agent_1.10-1_amd64.deb', size: 15 }, { name: 'keel-agent_1.10-1_arm64.deb', size: 15 }]);
  t.is(listing.rpm!.length, 8);
  t.deepEqual(listing.tar![0], { name: 'site-tools-0.9-1.noarch.tar.gz', size: 8 });
  t.deepEqual(listing.tar!.slice(1).map((entry) => entry.note), Array(8).fill('automated rpm-to-tar conversion'));
  t.true(listing.tar!.some((entry) => entry.name === 'keel-agent-1.10-1.x86_64.tar.gz'));

  // By name: the newest version for x86_64; keel-agent does not match keel-agent-tools.
  t.is((await body('/install/client/download/rpm/keel-agent')).text, 'agent 1.10 x86_64');
  t.is((await body('/install/client/download/rpm/aarch64/keel-agent')).text, 'agent 1.10 aarch64');
  t.is((await body('/install/client/download/rpm/arm64/keel-agent')).text, 'agent 1.10 aarch64');
  t.is((await body('/install/client/download/keel-agent?pkg=rpm&arch=arm64')).text, 'agent 1.10 aarch64');
  // An exact file name, older version included; a name-version prefix.
  t.is((await body('/install/client/download/rpm/keel-agent-1.2-1.x86_64')).text, 'agent 1.2 x86_64');
  t.is((await body('/install/client/download/rpm/keel-agent-1.2')).text, 'agent 1.2 x86_64');
  // noarch fits any architecture.
  t.is((await body('/install/client/download/rpm/aarch64/keel-agent-tools')).text, 'tools 3.0');
  // DEBs by their Debian names.
  const deb = await body('/install/client/download/deb/x86_64/keel-agent');
  t.is(deb.text, 'agent deb amd64');
  t.is(deb.disposition, 'attachment; filename="keel-agent_1.10-1_amd64.deb"');
  // No type: tar, and a TAR already in tar/ is sent as it is.
  const tar = await body('/install/client/download/site-tools');
  t.is(tar.text, 'site tar');
  t.is((await body('/install/client/download/tgz/site-tools')).text, 'site tar');
  t.is((await body('/install/client/download/tar.gz/amd64/site-tools')).text, 'site tar');

  // Ambiguous: a prefix that is no package's name but starts two.
  const ambiguous = await h.call('GET', '/install/client/download/rpm/site');
  t.is(ambiguous.status, 400);
  t.is(ambiguous.json.reason, 'Package name site is ambiguous: it matches site-agent-1.0-1.x86_64.rpm, site-monitor-1.0-1.x86_64.rpm; name one of them');
  // The exact package name wins over a longer name starting with it.
  t.is((await body('/install/client/download/rpm/other')).text, 'other 2.0');

  const unknownType = await h.call('GET', '/install/client/download/zip/keel-agent');
  t.is(unknownType.status, 400);
  t.is(unknownType.json.reason, 'Unknown package type \'zip\': one of rpm, deb, tar, tgz, tar.gz');
  const unknownArch = await h.call('GET', '/install/client/download/rpm/sparc/keel-agent');
  t.is(unknownArch.status, 400);
  t.is(unknownArch.json.reason, 'Unknown architecture \'sparc\': one of x86_64, amd64, aarch64, arm64');
  const missing = await h.call('GET', '/install/client/download/deb/nothing-here');
  t.is(missing.status, 404);
  t.is(missing.json.reason, 'No deb package nothing-here for x86_64');
  // DEBs are never converted: a TAR of a package that only exists as a DEB is not found.
  t.is((await h.call('GET', '/install/client/download/tar/arm64/keel-agent_1.10-1_arm64')).status, 404);
  t.is((await h.call('GET', '/install/client/download/rpm/..%2Fsecret')).status, 400);
});

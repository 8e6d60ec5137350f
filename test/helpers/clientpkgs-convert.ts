// A process that converts one RPM through ClientPackages, for the kill -9 test of the conversion
// cache (test/clientpkgs-rpm.test.ts): `node --import tsx clientpkgs-convert.ts <dir> <name>`.
import { pino } from 'pino';
import { ClientPackages } from '../../src/clientpkgs/directory.js';

const [dir, name] = process.argv.slice(2);
const packages = new ClientPackages(dir!, 1 << 30, pino({ level: 'silent' }));
await packages.find({ name: name!, type: 'tar', arch: 'x86_64' });
console.log('converted');

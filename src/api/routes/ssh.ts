// GET /sshkey?algorithm=ed25519|ecdsa|rsa (spec 004): a new SSH key pair in OpenSSH's formats,
// returned once and kept nowhere (not stored, not logged). The registry of public keys is
// /sshkeys (routes/registries.ts). docs/registries.md, docs/security.md.
import { badRequest } from '../../http/errors.js';
import { generateKeyPair, KEY_ALGORITHMS, type KeyAlgorithm } from '../../ssh/keys.js';
import type { Route } from '../route.js';

export const sshKeyRoutes: Route[] = [
  {
    method: 'GET', path: '/sshkey', access: 'role.authuser',
    summary: `Generate an SSH key pair (?algorithm=${KEY_ALGORITHMS.join('|')}, default ed25519): {public, private}; nothing is kept`,
    handler: (req) => {
      const algorithm = req.query.get('algorithm') ?? 'ed25519';
      if (!(KEY_ALGORITHMS as readonly string[]).includes(algorithm)) throw badRequest(`Parameter 'algorithm' must be one of ${KEY_ALGORITHMS.join(', ')}`);
      return generateKeyPair(algorithm as KeyAlgorithm, `keel-generated-${algorithm}`);
    },
  },
];

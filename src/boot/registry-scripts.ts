// The texts of spec 004's registries as the node fetching them reads them: raw, public (iPXE,
// Anaconda's inst.ks=, a %pre's curl hold no token), each `<placeholder>` filled for the node whose
// IP is the caller's source address, written in the text's own language (iPXE, shell, kickstart).
// Served at GET /boot/<registry>/<id> and, as spec 004's paths say, GET /api/v1/<registry>/<id>.
// docs/registries.md.
import { bufferContent, FileReply } from '../http/file-reply.js';
import { REGISTRY_CLASSES, type RegistryClass } from '../model/classes/registry.js';
import type { Model } from '../model/model.js';
import { fillNodeTemplate, kickstartQuote, nodeVariables, type Quote } from './kickstart.js';
import { ipxeQuote } from './ipxe-script.js';
import type { BootRoute } from './context.js';

const QUOTES: Record<RegistryClass['language'], Quote | undefined> = {
  ipxe: ipxeQuote,
  shell: kickstartQuote,
  kickstart: kickstartQuote,
  // A public key is served as stored.
  none: undefined,
};

/**
 * The text of the registry object `id` (sequential id, uid or name) names, filled for the node at
 * `from`. A caller that is no node gets the text with its placeholders as written.
 */
export function registryText(model: Model, cls: RegistryClass, id: string, from: string): FileReply {
  const record = model.objects(cls).resolve(id);
  let text = record.text as string;
  const quote = QUOTES[cls.language];
  const nodeUid = quote && from !== '' ? model.nodes.collection.lookup('ip', from) : undefined;
  const node = nodeUid === undefined ? undefined : model.nodes.collection.get(nodeUid);
  if (quote && node) text = fillNodeTemplate(text, nodeVariables(model.store, node, model.nodes.view(node), model.credentialNames()), quote);
  return new FileReply(bufferContent(Buffer.from(text, 'utf8'), record.last_modified), {
    'Content-Type': 'text/plain; charset=utf-8',
    // Filled per caller: no shared cache may keep one node's text for another.
    'Cache-Control': node ? 'no-store' : 'no-cache',
  });
}

/** GET /boot/<registry>/<id> for every registry. */
export const registryBootRoutes: BootRoute[] = REGISTRY_CLASSES.map((cls) => ({
  method: 'GET', path: `/${cls.plural}/:id`, access: 'public',
  summary: `The ${cls.label}'s text, raw, filled for the asking node`,
  handler: (req, ctx) => registryText(ctx.model, cls, req.params.id!, req.remoteAddress),
}));

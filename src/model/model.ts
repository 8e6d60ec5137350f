// The object model over one store: an ObjectStore per class, the chunk store their files live in,
// the kickstart files, and the attached-file views of the classes that carry files. Made once per
// store by the composition root (src/serve.ts) or an offline tool (src/cli.ts), and passed on: no
// module keeps one of its own.
import { ChunkStore } from '../store/chunks.js';
import type { Store, StoredRecord } from '../store/store.js';
import { AttachedFiles } from './attached-files.js';
import { adminClass } from './classes/admin.js';
import { attribClass } from './classes/attrib.js';
import { bootConfigClass, bootConfigProblems, type BootConfigProblem } from './classes/bootconfig.js';
import { distroClass } from './classes/distro.js';
import { dyngroupClass } from './classes/dyngroup.js';
import { gitRepoClass } from './classes/gitrepo.js';
import { hostnameClass } from './classes/hostname.js';
import { imageClass } from './classes/image.js';
import { namingPoolClass } from './classes/namingpool.js';
import { networkClass } from './classes/network.js';
import { nodeClass } from './classes/node.js';
import { localnodeClass } from './classes/localnode.js';
import { kickstartClass, REGISTRY_CLASSES } from './classes/registry.js';
import { repoClass } from './classes/repo.js';
import { KickstartFiles } from './kickstarts.js';
import { ObjectStore, type Catalog, type ObjectClass } from './object-store.js';
import { clusterCredentialNames } from './power-uri.js';

/** Every object class keel stores. */
export const OBJECT_CLASSES: readonly ObjectClass[] = [
  adminClass, nodeClass, attribClass, namingPoolClass, networkClass, hostnameClass, dyngroupClass,
  imageClass, bootConfigClass, repoClass, distroClass, gitRepoClass, ...REGISTRY_CLASSES, localnodeClass,
];

export class Model implements Catalog {
  readonly chunks: ChunkStore;
  readonly kickstarts: KickstartFiles;
  private readonly byName = new Map<string, ObjectStore>();
  private readonly attached = new Map<string, AttachedFiles>();
  private credentials?: ReadonlySet<string>;

  constructor(readonly store: Store, options: { dataDir: string }) {
    // The one ChunkStore of this store: pins (GC safety) and the manifest cache are per instance.
    this.chunks = new ChunkStore(store);
    // A boot config's kickstart may be a `git:` source; whether its gitrepo exists is a lookup here.
    // A kickstart of the registry (spec 004's /kickstarts) is found by name before a file.
    this.kickstarts = new KickstartFiles(options.dataDir, (name) => this.gitRepos.collection.lookup('name', name) !== undefined, (name) => {
      const kickstarts = this.objects(kickstartClass).collection;
      const uid = kickstarts.lookup('name', name);
      const record = uid === undefined ? undefined : kickstarts.get(uid);
      return record && typeof record.text === 'string' ? { text: record.text, mtime: record.last_modified } : undefined;
    });
    // Every class's database is opened here, outside any transaction: LMDB forgets a database first
    // opened inside a transaction that then aborts, and the model's rules read across classes.
    for (const cls of OBJECT_CLASSES) {
      const objects = new ObjectStore(cls, store, this.chunks, this);
      this.byName.set(cls.name, objects);
      if (cls.files) this.attached.set(cls.name, new AttachedFiles(objects, this.chunks));
    }
    store.subscribe((change) => {
      if (change.class === nodeClass.name) this.credentials = undefined;
    });
  }

  /**
   * Attribute names that fill a user or password in some node's power URI (power-uri.ts), for
   * masking. Reading them decodes every node, so they are kept until a node changes: the iPXE
   * script and read-only API views ask on every request.
   */
  credentialNames(): ReadonlySet<string> {
    return (this.credentials ??= clusterCredentialNames(this.store));
  }

  /** The records of `cls`. */
  objects(cls: ObjectClass): ObjectStore {
    return this.objectsNamed(cls.name);
  }

  objectsNamed(className: string): ObjectStore {
    const objects = this.byName.get(className);
    if (!objects) throw new Error(`no object class named ${className}`);
    return objects;
  }

  all(): Iterable<ObjectStore> {
    return this.byName.values();
  }

  /** The files of a class that carries them (`files` in its declaration). */
  files(cls: ObjectClass): AttachedFiles {
    const files = this.attached.get(cls.name);
    if (!files) throw new Error(`object class ${cls.name} carries no files`);
    return files;
  }

  get admins(): ObjectStore {
    return this.objects(adminClass);
  }

  get nodes(): ObjectStore {
    return this.objects(nodeClass);
  }

  get bootConfigs(): ObjectStore {
    return this.objects(bootConfigClass);
  }

  get gitRepos(): ObjectStore {
    return this.objects(gitRepoClass);
  }

  /** What a boot config lacks (classes/bootconfig.ts). */
  bootConfigProblems(record: StoredRecord): BootConfigProblem[] {
    return bootConfigProblems(record, { chunks: this.chunks, images: this.objects(imageClass), repos: this.objects(repoClass), kickstarts: this.kickstarts });
  }
}

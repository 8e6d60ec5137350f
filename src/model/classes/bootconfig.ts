// Boot config objects (spec 001, Boot Config Objects): how a node boots — kernel and initramfs
// (files in the chunk store), command line, boot style, image, repo and kickstart — and the one
// answer to what a boot config lacks.
import type { ChunkStore } from '../../store/chunks.js';
import type { StoredRecord } from '../../store/store.js';
import { fileId } from '../files.js';
import { bootConfigIndexes } from '../indexes.js';
import type { KickstartFiles } from '../kickstarts.js';
import type { ObjectClass, ObjectStore, Reference } from '../object-store.js';
import { presentReferencesByName } from './image.js';

export const BOOT_STYLES = ['rwram', 'roram', 'iscsi', 'next', 'disked', 'sanboot', 'live'] as const;
/** The boot style of a boot config that names none: RAM-based, read-write. */
export const DEFAULT_BOOT_STYLE = 'rwram';
/** Styles that boot a kernel and initramfs from keel; the others hand over to a disk or an iSCSI target. */
const KERNEL_STYLES: readonly string[] = ['rwram', 'roram', 'live', 'disked'];
/** Styles whose root file system is the boot config's image. */
const IMAGE_STYLES: readonly string[] = ['rwram', 'roram', 'live'];
/** Stored as uids, shown by name as the spec's example shows `image` (docs/spec-decisions.md). */
const BOOT_CONFIG_REFERENCES: readonly Reference[] = [{ field: 'image', className: 'image' }, { field: 'repo', className: 'repo' }];

export const bootConfigClass: ObjectClass = {
  name: 'bootconfig',
  plural: 'bootconfigs',
  label: 'boot config',
  indexes: bootConfigIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  frozenReason: 'Cannot modify frozen boot configuration.',
  references: BOOT_CONFIG_REFERENCES,
  files: ['kernel', 'initramfs'],
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the boot config' },
    description: { type: 'string', summary: 'Free text' },
    cmdline: { type: 'string', summary: 'Kernel command line' },
    image: { type: 'string', summary: 'Image booted into (UID or name; stored as UID, shown by name)' },
    boot_style: { type: 'string', enum: BOOT_STYLES, summary: `How the node boots; default ${DEFAULT_BOOT_STYLE} (RAM-based, read-write)` },
    repo: { type: 'string', summary: 'Repo used by installs (UID or name; stored as UID, shown by name)' },
    kickstart: { type: 'string', summary: 'Name of a kickstart file in <data-dir>/kickstarts/, or a file in a gitrepo: git:<repo>/<path>[@<ref>]' },
    kernel: { type: 'object', readOnly: true, summary: 'The kernel: size, mtime, chksum, fmt (upload with PUT /bootconfig/<UID>/kernel)' },
    initramfs: { type: 'object', readOnly: true, summary: 'The initramfs: size, mtime, chksum, fmt (upload with PUT /bootconfig/<UID>/initramfs)' },
  },
  defaults: () => ({ boot_style: DEFAULT_BOOT_STYLE }),
  viewReads: ['image', 'repo'],
  present(record, view, store) {
    presentReferencesByName(BOOT_CONFIG_REFERENCES, record, view, store);
  },
};

export function bootStyleOf(record: Readonly<Record<string, unknown>>): string {
  return (record.boot_style as string | undefined) ?? DEFAULT_BOOT_STYLE;
}

/** What a boot config's problems are checked against. */
export interface BootConfigSources {
  chunks: ChunkStore;
  images: ObjectStore;
  repos: ObjectStore;
  kickstarts: KickstartFiles;
}

export interface BootConfigProblem {
  /** In words for an admin, e.g. `no kernel`, `image img has no content`. */
  text: string;
  /**
   * Whether a node cannot be given a boot script for it: what its boot style loads or boots into
   * is missing. Other problems show up later (a kickstart file the installer fetches when it runs)
   * or do not matter for the style (an image of a sanboot config).
   */
  blocksBoot: boolean;
}

/**
 * What a boot config lacks: the one answer for GET /bootconfig/<id>/errors (every problem) and for
 * the iPXE script (src/boot/ipxe-script.ts: a node whose config has a problem that blocks boot gets
 * a retry script saying so). Checks its kernel and initramfs where its style loads them, its image
 * and that image's content, its repo and its kickstart file. Empty: nothing is missing.
 */
export function bootConfigProblems(record: StoredRecord, from: BootConfigSources): BootConfigProblem[] {
  const problems: BootConfigProblem[] = [];
  const style = bootStyleOf(record);
  const loadsKernel = KERNEL_STYLES.includes(style);
  const bootsImage = IMAGE_STYLES.includes(style);
  for (const slot of loadsKernel ? ['kernel', 'initramfs'] : []) {
    if (!from.chunks.stat(fileId(bootConfigClass.name, record.uid, slot))) problems.push({ text: `no ${slot}`, blocksBoot: true });
  }
  if (typeof record.image === 'string') {
    const image = from.images.collection.get(record.image);
    if (!image) problems.push({ text: `image ${record.image} does not exist`, blocksBoot: bootsImage });
    else if (!from.chunks.stat(fileId(from.images.cls.name, image.uid, 'content'))) problems.push({ text: `image ${String(image.name)} has no content`, blocksBoot: bootsImage });
  } else if (bootsImage) problems.push({ text: `boot_style ${style} needs an image with content`, blocksBoot: true });
  if (typeof record.repo === 'string' && !from.repos.collection.get(record.repo)) problems.push({ text: `repo ${record.repo} does not exist`, blocksBoot: false });
  if (typeof record.kickstart === 'string') {
    if (!from.kickstarts.exists(record.kickstart)) problems.push({ text: `kickstart file ${record.kickstart} does not exist`, blocksBoot: false });
  } else if (style === 'disked') problems.push({ text: 'boot_style disked needs a kickstart', blocksBoot: true });
  return problems;
}

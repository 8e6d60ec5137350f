#!/usr/bin/env bash
# Builds keel's default boot assets from Debian's packages, into OUTDIR (default images/out):
#   vmlinuz          Debian's kernel (linux-image-amd64 of the host's release)
#   initramfs.img    keel's initramfs (images/initramfs/): busybox-static, the NIC, loop, squashfs
#                    and overlay modules, and the fetcher that gets the root image from keel
#   rootfs.squashfs  a minimal Debian root (mmdebstrap, variant minbase, sysvinit) with keel's node
#                    agent (images/rootfs/keel-agent), sshd and a root shell on ttyS0
# Packages come from the host's apt sources (no mirror is named here) and are kept under
# OUTDIR/cache, so a re-run downloads nothing it has. When the inputs (these files, the kernel and
# busybox versions, the release) are those of the last build, nothing is rebuilt.
# Nothing is installed on the host. Needs root (mmdebstrap's root mode, device nodes), and the
# Debian packages mmdebstrap squashfs-tools cpio kmod xz-utils zstd.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUTDIR=$(mkdir -p "${1:-$HERE/out}" && cd "${1:-$HERE/out}" && pwd)
CACHE=$OUTDIR/cache
# Modules the initramfs loads (with their dependencies, resolved by modprobe at build time):
# the boot NIC drivers, AF_PACKET for udhcpc, loop + squashfs for the image, overlay for roram.
INITRAMFS_MODULES=(e1000 virtio_net virtio_pci af_packet loop squashfs overlay)
# The root: apt and dpkg (minbase), sysvinit (boots in a few seconds where systemd takes tens
# under emulation), curl for the agent, openssh-server for keel's remote execution (PUT
# /node/<UID>/exec) and the operator, iproute2 and procps for the operator at the shell;
# merged /usr is set up by mmdebstrap's merged-usr hook, not the usrmerge package (which would pull
# in all of perl: 46 MB).
ROOTFS_PACKAGES=sysvinit-core,curl,openssh-server,iproute2,procps

log() { printf 'images/build.sh: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "must run as root (mmdebstrap in root mode, device nodes in the initramfs)"
  exit 1
fi
for tool in mmdebstrap mksquashfs cpio depmod modprobe xz zstd flock apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || { log "missing $tool: apt-get install mmdebstrap squashfs-tools cpio kmod xz-utils zstd"; exit 1; }
done

mkdir -p "$CACHE/debs"
# One build at a time per OUTDIR: a second caller waits, then finds the result up to date.
exec 9>"$OUTDIR/.lock"
flock 9

. /etc/os-release
SUITE=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}

# apt's package lists: fetched only when there are none (the host's own apt sources).
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  log "no apt lists: apt-get update"
  apt-get update -qq
fi

candidate() { apt-cache policy "$1" | awk '$1 == "Candidate:" { print $2 }'; }
KERNEL_PKG=$(apt-cache depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
[ -n "$KERNEL_PKG" ] || { log "cannot resolve linux-image-amd64 to a kernel package"; exit 1; }
KERNEL_VERSION=$(candidate "$KERNEL_PKG")
BUSYBOX_VERSION=$(candidate busybox-static)

# Each output is rebuilt only when its inputs changed: this script, the files it is made of, the
# package versions; the digest of those sits beside it in .<output>.inputs.
sources_digest() { (cd "$HERE" && find "$@" -type f -print0 | sort -z | xargs -0 sha256sum); }
MKSQUASHFS_OPTIONS=(-comp zstd -Xcompression-level 15)
KERNEL_INPUTS=$(echo "$KERNEL_PKG=$KERNEL_VERSION" | sha256sum | cut -d' ' -f1)
INITRAMFS_INPUTS=$( { echo "$KERNEL_PKG=$KERNEL_VERSION busybox-static=$BUSYBOX_VERSION ${INITRAMFS_MODULES[*]}"; sources_digest build.sh initramfs; } | sha256sum | cut -d' ' -f1)
ROOTFS_INPUTS=$( { echo "$SUITE"; sources_digest build.sh rootfs; } | sha256sum | cut -d' ' -f1)
# Whether OUTPUT exists and was built from INPUTS.
current() { [ -s "$OUTDIR/$1" ] && [ "$(cat "$OUTDIR/.$1.inputs" 2>/dev/null)" = "$2" ]; }
# Puts OUTPUT.new in place with the digest of its inputs.
publish() { mv "$OUTDIR/$1.new" "$OUTDIR/$1" && echo "$2" >"$OUTDIR/.$1.inputs"; }
if current vmlinuz "$KERNEL_INPUTS" && current initramfs.img "$INITRAMFS_INPUTS" && current rootfs.squashfs "$ROOTFS_INPUTS"; then
  log "up to date in $OUTDIR"
  exit 0
fi
started=$(date +%s)

# The cached .deb of PACKAGE=VERSION, if any.
cached_deb() {
  find "$CACHE/debs" -maxdepth 1 -name "${1}_*.deb" -print0 | while IFS= read -r -d '' file; do
    [ "$(dpkg-deb -f "$file" Version)" = "$2" ] && { echo "$file"; break; }
  done
}
# The .deb of PACKAGE=VERSION from the cache, downloaded when missing; prints its path.
deb() {
  if [ -z "$(cached_deb "$1" "$2")" ]; then
    log "downloading $1 $2"
    (cd "$CACHE/debs" && apt-get download -q "$1=$2" >/dev/null 2>&1) || { log "apt-get download $1=$2 failed"; exit 1; }
  fi
  cached_deb "$1" "$2"
}

WORK=$(mktemp -d "$OUTDIR/.work.XXXXXX")
# --one-file-system: should mmdebstrap be killed with /dev, /proc or /sys still mounted in its
# root, they are left alone.
trap 'rm -rf --one-file-system "$WORK"' EXIT

# --- kernel and initramfs (its modules come from the kernel package) ---------------------------
if ! current vmlinuz "$KERNEL_INPUTS" || ! current initramfs.img "$INITRAMFS_INPUTS"; then
KDIR=$WORK/kernel
dpkg-deb -x "$(deb "$KERNEL_PKG" "$KERNEL_VERSION")" "$KDIR"
KVER=$(basename "$(find "$KDIR/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
depmod -b "$KDIR" "$KVER"
cp "$KDIR/boot/vmlinuz-$KVER" "$OUTDIR/vmlinuz.new"

# --- initramfs --------------------------------------------------------------------------------
IDIR=$WORK/initramfs
mkdir -p "$IDIR"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,newroot,etc,lib/modules/"$KVER"}
BDIR=$WORK/busybox
dpkg-deb -x "$(deb busybox-static "$BUSYBOX_VERSION")" "$BDIR"
cp "$BDIR/bin/busybox" "$IDIR/bin/busybox"
install -m 0755 "$HERE/initramfs/init" "$IDIR/init"
install -m 0755 "$HERE/initramfs/keel-fetch" "$IDIR/bin/keel-fetch"
install -m 0755 "$HERE/initramfs/udhcpc.script" "$IDIR/etc/udhcpc.script"
# The modules in load order, dependencies first; Debian's are .ko.xz, which busybox's insmod
# cannot read: they go in decompressed. Built-in ones are skipped.
: >"$IDIR/lib/modules/load-order"
while read -r kind path _; do
  [ "$kind" = insmod ] || continue
  name=$(basename "$path"); name=${name%.xz}; name=${name%.zst}
  grep -qx "$name" "$IDIR/lib/modules/load-order" && continue
  case "$path" in
    *.xz) xz -dc "$path" >"$IDIR/lib/modules/$KVER/$name" ;;
    *.zst) zstd -qdc "$path" >"$IDIR/lib/modules/$KVER/$name" ;;
    *) cp "$path" "$IDIR/lib/modules/$KVER/$name" ;;
  esac
  echo "$name" >>"$IDIR/lib/modules/load-order"
done < <(for module in "${INITRAMFS_MODULES[@]}"; do modprobe -d "$KDIR" -S "$KVER" --show-depends "$module"; done)
echo "$KVER" >"$IDIR/lib/modules/version"
# /dev/console for the kernel to open before devtmpfs is mounted.
mknod -m 0600 "$IDIR/dev/console" c 5 1
(cd "$IDIR" && find . -print0 | sort -z | cpio --null --create --format=newc --owner=0:0 --reproducible --quiet | gzip -9 -n) >"$OUTDIR/initramfs.img.new"
publish vmlinuz "$KERNEL_INPUTS"
publish initramfs.img "$INITRAMFS_INPUTS"
log "kernel $KVER; initramfs with $(wc -l <"$IDIR/lib/modules/load-order") modules"
fi

# --- root filesystem --------------------------------------------------------------------------
if ! current rootfs.squashfs "$ROOTFS_INPUTS"; then
RDIR=$WORK/root
# The host's apt sources, as they are (one-line .list and deb822 .sources files).
SOURCES=()
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$file" ] && grep -qE '^[[:space:]]*(deb|Types:)' "$file" && SOURCES+=("$file")
done
[ ${#SOURCES[@]} -gt 0 ] || { log "the host has no apt sources"; exit 1; }
mkdir -p "$CACHE/rootfs-debs"
mmdebstrap --quiet --mode=root --variant=minbase --include="$ROOTFS_PACKAGES" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
  --setup-hook="sync-in '$CACHE/rootfs-debs' /var/cache/apt/archives/" \
  --customize-hook="sync-out /var/cache/apt/archives '$CACHE/rootfs-debs'" \
  --customize-hook="'$HERE/rootfs/customize' \"\$1\" '$HERE/rootfs'" \
  "$SUITE" "$RDIR" "${SOURCES[@]}" >/dev/null
rm -f "$CACHE"/rootfs-debs/lock
mksquashfs "$RDIR" "$OUTDIR/rootfs.squashfs.new" "${MKSQUASHFS_OPTIONS[@]}" -noappend -quiet -no-progress >/dev/null
publish rootfs.squashfs "$ROOTFS_INPUTS"
log "root: $(du -sh "$RDIR" | cut -f1) of files"
fi

log "built in $(($(date +%s) - started)) s: $(cd "$OUTDIR" && du -h vmlinuz initramfs.img rootfs.squashfs | tr '\t\n' ' ')"

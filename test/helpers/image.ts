// A tiny container image made locally from busybox-static, because no registry is reachable:
// an OCI image layout (oci-layout, index.json, blobs/sha256/...) packed as one tarball that
// `ctr images import` takes. One uncompressed layer holds /bin/busybox and a symlink per applet.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** The name the imported image carries in containerd (`ctr run <ref> ...`). */
export const BUSYBOX_IMAGE_REF = 'docker.io/flatnet/busybox:test';
const BUSYBOX = '/bin/busybox';
/** OCI's name for this machine's architecture (busybox-static is the host's own binary). */
const ARCH = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;

// Always present, whatever `busybox --list` says: what the tests run inside containers.
const NEEDED = ['sh', 'ip', 'ping', 'nc', 'ifconfig', 'sleep', 'cat', 'wget', 'httpd', 'ls', 'echo', 'hostname', 'route', 'netstat', 'ps', 'kill'];

interface Blob { digest: string; size: number }

/** Moves a file into blobs/sha256/ under its digest. */
function storeBlob(layout: string, file: string): Blob {
  const data = readFileSync(file);
  const hex = createHash('sha256').update(data).digest('hex');
  renameSync(file, join(layout, 'blobs', 'sha256', hex));
  return { digest: `sha256:${hex}`, size: data.length };
}

function writeJsonBlob(layout: string, value: unknown): Blob {
  const tmp = join(layout, 'blob.tmp');
  writeFileSync(tmp, JSON.stringify(value));
  return storeBlob(layout, tmp);
}

/**
 * Builds the image under `dir` (a scratch directory of the caller's) and returns the path of the
 * OCI layout tarball; `ctr images import` names the image BUSYBOX_IMAGE_REF.
 */
export function buildBusyboxImage(dir: string, ref: string = BUSYBOX_IMAGE_REF): string {
  const rootfs = join(dir, 'rootfs');
  const layout = join(dir, 'layout');
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'root', 'run', 'var']) mkdirSync(join(rootfs, d), { recursive: true });
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });

  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  const applets = new Set(NEEDED);
  for (const a of execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n')) if (/^[a-z0-9][a-z0-9._-]*$/.test(a)) applets.add(a);
  applets.delete('busybox');
  for (const a of [...applets].sort()) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\n');

  // Reproducible layer: fixed owner, order and times, so the digest only changes with busybox.
  const layerTar = join(layout, 'layer.tar');
  execFileSync('tar', ['-C', rootfs, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', layerTar, '.']);
  const layer = storeBlob(layout, layerTar);

  const config = writeJsonBlob(layout, {
    architecture: ARCH,
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [layer.digest] },   // uncompressed: diff id == layer digest
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'flatnet test/helpers/image.ts' }],
  });
  const manifest = writeJsonBlob(layout, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  });
  const tag = ref.slice(ref.lastIndexOf(':') + 1);
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest,
      platform: { architecture: ARCH, os: 'linux' },
      // containerd names the image after io.containerd.image.name; other tools read ref.name.
      annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
    }],
  }));
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  const out = join(dir, 'busybox-oci.tar');
  execFileSync('tar', ['-C', layout, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  if (statSync(out).size < statSync(BUSYBOX).size) throw new Error(`image tarball ${out} is too small`);
  return out;
}

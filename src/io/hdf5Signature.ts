/** HDF5 file sniffing shared by the grid reader and the library reader. */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** True when the HDF5 superblock signature is at byte 0, 512, 1024, ... (HDF5 spec, "Superblock"). */
export function hasHdf5Signature(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const buf = Buffer.alloc(8);
    for (let off = 0; off + 8 <= size && off <= 1 << 20; off = off === 0 ? 512 : off * 2) {
      readSync(fd, buf, 0, 8, off);
      if (HDF5_SIGNATURE.every((b, i) => buf[i] === b)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/** The published data the GPU synthesis tests run on: BC03 (low resolution, Chabrier), Inoue 2014 IGM, Inoue 2011 nebular tables. */
import path from 'node:path';
import { readBc03Grid } from '../../src/grid/bc03.js';
import type { SpsGrid } from '../../src/grid/types.js';
import { resolveDataDir } from '../../src/io/paths.js';
import { type Inoue14, loadInoue14 } from '../../src/physics/igm.js';
import { type Inoue11Table, loadInoue11 } from '../../src/physics/nebular.js';

export interface SynthData {
  grid: SpsGrid;
  inoue14: Inoue14;
  nebular: Inoue11Table;
}

export async function loadSynthData(): Promise<SynthData> {
  const dataDir = resolveDataDir();
  return {
    grid: readBc03Grid(path.join(dataDir, 'sps', 'bc03_lr_basel_padova1994_chabrier'), { lSunErgS: 3.828e33, dropZeroAge: true }),
    inoue14: loadInoue14(),
    nebular: await loadInoue11(path.join(dataDir, 'nebular', 'inoue11')),
  };
}

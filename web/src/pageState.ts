/**
 * What the page publishes on `window.synference` (and `document.body.dataset.state`), for scripts and
 * the browser test (test/web/page.browser.test.ts). State: starting | no-webgpu | ready | busy | done | error.
 */
export interface PageState {
  state: 'starting' | 'no-webgpu' | 'ready' | 'busy' | 'done' | 'error';
  message?: string;
  adapter?: string;
  model?: { name: string; parameters: string[]; bands: string[]; needsRedshift: boolean };
  result?: {
    parameters: string[];
    ids: string[];
    flags: number[];
    /** [row][parameter]; NaN (null in JSON) where not fitted. */
    median: number[][];
    p16: number[][];
    p84: number[][];
    acceptance: number[];
    seconds: number;
    galaxiesPerSecond: number;
    samples: number;
    seed: number;
  };
  /** The galaxy shown in detail; seconds of each step (posterior draws, corner plot, SED). */
  galaxy?: { row: number; id: string; corner: boolean; sed: boolean | string; seconds: Record<string, number> };
}

declare global {
  interface Window {
    synference: PageState;
  }
}


/** Preprocessing profiles: presets, detection, the degenerate-output check, and storage beside the reports. */
export * from './presets';
export * from './detect';
export * from './store';
export * from './check';

/**
 * Child process for test/webgpu.test.ts: selectBackend(argv[2]) with a webgpu backend whose device cannot be created
 * (its factory throws, as a lost or refused device does). Prints what was chosen and what tf.getBackend() says.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendChoice } from '../../src/engine/backend';

// tf.registerBackend hands over to the engine's method (the module's exports are getters).
const engine = tf.engine() as unknown as { registerBackend: (name: string, factory: () => unknown, priority?: number) => boolean };
const register = engine.registerBackend.bind(engine);
engine.registerBackend = (name, factory, priority) =>
  register(name, name === 'webgpu' ? () => Promise.reject(new Error('simulated: the device could not be created')) : factory, priority);

selectBackend(process.argv[2] as BackendChoice).then(
  (chose) => process.stdout.write(JSON.stringify({ chose, current: tf.getBackend() })),
  (e: Error) => process.stdout.write(JSON.stringify({ error: e.message, current: tf.getBackend() })),
);

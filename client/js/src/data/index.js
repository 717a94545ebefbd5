/**
 * A device's samples from files, as a `fedge data split` folder holds them (docs/client-data.md):
 *
 *     datafiles.js  readDataFiles: meta.json, .npz, .csv and JSON samples, checked as Python checks them;
 *                   samplesOfShape: the samples a model of that input shape trains on
 *     npz.js        readNpz / readNpy: numpy's formats, deflate through DecompressionStream
 */

export { DataFileError, normalise, readDataFiles, readMeta, samplesOfShape } from "./datafiles.js";
export { readNpy, readNpz } from "./npz.js";

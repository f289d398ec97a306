package io.vllmsnap.cuda;

import java.util.Map;

/**
 * Names of the CUDA driver's CUresult codes that the checkpoint path can meet. Used when the driver cannot
 * name a code itself (cuGetErrorName missing, or the code came from the cuda-checkpoint binary's exit).
 */
public final class CudaResult {
    public static final int SUCCESS = 0;
    public static final int NOT_SUPPORTED = 801;

    private static final Map<Integer, String> NAMES = Map.ofEntries(
            Map.entry(0, "CUDA_SUCCESS"),
            Map.entry(1, "CUDA_ERROR_INVALID_VALUE"),
            Map.entry(2, "CUDA_ERROR_OUT_OF_MEMORY"),
            Map.entry(3, "CUDA_ERROR_NOT_INITIALIZED"),
            Map.entry(4, "CUDA_ERROR_DEINITIALIZED"),
            Map.entry(100, "CUDA_ERROR_NO_DEVICE"),
            Map.entry(101, "CUDA_ERROR_INVALID_DEVICE"),
            Map.entry(201, "CUDA_ERROR_INVALID_CONTEXT"),
            Map.entry(304, "CUDA_ERROR_OPERATING_SYSTEM"),
            Map.entry(400, "CUDA_ERROR_INVALID_HANDLE"),
            Map.entry(401, "CUDA_ERROR_ILLEGAL_STATE"),
            Map.entry(500, "CUDA_ERROR_NOT_FOUND"),
            Map.entry(600, "CUDA_ERROR_NOT_READY"),
            Map.entry(800, "CUDA_ERROR_NOT_PERMITTED"),
            Map.entry(801, "CUDA_ERROR_NOT_SUPPORTED"),
            Map.entry(802, "CUDA_ERROR_SYSTEM_NOT_READY"),
            Map.entry(803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"),
            Map.entry(805, "CUDA_ERROR_MPS_CONNECTION_FAILED"),
            Map.entry(909, "CUDA_ERROR_TIMEOUT"),
            Map.entry(999, "CUDA_ERROR_UNKNOWN"));

    private CudaResult() {
    }

    /** The symbolic name of a CUresult, or "CUresult N" for codes this table does not know. */
    public static String name(int code) {
        return NAMES.getOrDefault(code, "CUresult " + code);
    }

    /** A hint for the user where the code has a usual cause on the checkpoint path. */
    public static String hint(int code) {
        return switch (code) {
            case 801 -> "the driver does not support checkpointing this process (MPS client, MIG, UVM or IPC memory?)";
            case 401 -> "the process is not in the state this step needs (lock -> checkpoint -> restore -> unlock)";
            case 909 -> "the process did not reach a lockable point within the timeout (long-running kernel?)";
            case 3 -> "cuInit was not called or failed";
            case 100 -> "no GPU visible to this process (device files /dev/nvidia* missing?)";
            case 1 -> "invalid value (no such process, or it is not a CUDA process)";
            default -> "";
        };
    }
}

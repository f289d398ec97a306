package io.vllmsnap.cuda;

/** The driver's CUprocessState of a CUDA process, as cuCheckpointProcessGetState reports it. */
public enum ProcessGpuState {
    RUNNING(0), LOCKED(1), CHECKPOINTED(2), FAILED(3);

    private final int code;

    ProcessGpuState(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    public static ProcessGpuState fromCode(int code) {
        for (ProcessGpuState s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown CUprocessState " + code);
    }

    /** Parses what the cuda-checkpoint binary prints for --get-state ("running", "locked", ...). */
    public static ProcessGpuState parse(String text) {
        String t = text.strip().toUpperCase(java.util.Locale.ROOT);
        for (ProcessGpuState s : values()) {
            if (t.equals(s.name()) || t.endsWith(" " + s.name())) {
                return s;
            }
        }
        throw new IllegalArgumentException("unrecognised GPU process state '" + text.strip() + "'");
    }
}

package io.vllmsnap.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class CudaDriverTest {

    @Test
    void missingDriverLibrarySaysSoInsteadOfCrashing() {
        assertThatThrownBy(() -> CudaDriver.load("libcuda-absent-for-test.so.1"))
                .isInstanceOf(CudaUnavailableException.class)
                .hasMessageStartingWith("libcuda-absent-for-test.so.1 not found: no NVIDIA driver on this machine");
    }

    @Test
    void aLibraryWithoutTheDriverApiIsNotMistakenForTheDriver() {
        // libc is present everywhere and exports no cuInit.
        assertThatThrownBy(() -> CudaDriver.load("libc.so.6"))
                .isInstanceOf(CudaUnavailableException.class)
                .hasMessageContaining("lacks cuInit");
    }

    @Test
    void resultCodesHaveTheDriversNamesAndHints() {
        assertThat(CudaResult.name(801)).isEqualTo("CUDA_ERROR_NOT_SUPPORTED");
        assertThat(CudaResult.name(401)).isEqualTo("CUDA_ERROR_ILLEGAL_STATE");
        assertThat(CudaResult.name(12345)).isEqualTo("CUresult 12345");
        assertThat(CudaResult.hint(801)).contains("MPS");
        assertThat(new CudaException("cuCheckpointProcessLock(pid 7)", 801, CudaResult.name(801), CudaResult.hint(801)))
                .hasMessage("cuCheckpointProcessLock(pid 7) failed: CUDA_ERROR_NOT_SUPPORTED (801): "
                        + "the driver does not support checkpointing this process (MPS client, MIG, UVM or IPC memory?)");
    }

    @Test
    void processStatesFromDriverCodesAndUtilityOutput() {
        assertThat(ProcessGpuState.fromCode(2)).isEqualTo(ProcessGpuState.CHECKPOINTED);
        assertThat(ProcessGpuState.parse("locked\n")).isEqualTo(ProcessGpuState.LOCKED);
        assertThatThrownBy(() -> ProcessGpuState.fromCode(9)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ProcessGpuState.parse("Error: pid 5 not found"))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void detectionNeverThrowsAndFallsBackToNoGpuWithoutADriver() {
        boolean driverHere;
        try {
            CudaDriver.load();
            driverHere = true;
        } catch (CudaUnavailableException e) {
            driverHere = false;
        }
        // CI has no NVIDIA driver: there the engine must get the no-GPU checkpointer, quietly.
        assertThat(CudaCheckpointer.forThisNode()).isInstanceOf(
                driverHere ? CudaCheckpointer.class : io.vllmsnap.engine.NoGpuCheckpointer.class);
    }

    @Test
    void versionsFormatAsCudaDoes() {
        assertThat(CudaDriver.formatVersion(13000)).isEqualTo("13.0");
        assertThat(CudaDriver.formatVersion(12080)).isEqualTo("12.8");
    }
}

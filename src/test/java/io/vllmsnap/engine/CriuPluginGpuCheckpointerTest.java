package io.vllmsnap.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** With CRIU's CUDA plugin doing the GPU steps, the engine moves no GPU state but still checks the plugin's result. */
class CriuPluginGpuCheckpointerTest {

    /** The node's checkpointer: records every call that would move GPU state. */
    static final class Driver implements GpuCheckpointer {
        final List<String> moves = new ArrayList<>();
        GpuProcessState state = GpuProcessState.RUNNING;
        String unsupported;

        @Override
        public boolean isCudaProcess(long pid) {
            return pid == 50;
        }

        @Override
        public void checkSupported(long pid) throws GpuCheckpointException {
            if (unsupported != null) {
                throw new GpuCheckpointException(unsupported);
            }
        }

        @Override
        public void lock(long pid, Duration timeout) {
            moves.add("lock " + pid);
        }

        @Override
        public void checkpoint(long pid) {
            moves.add("checkpoint " + pid);
        }

        @Override
        public void restore(long pid) {
            moves.add("restore " + pid);
        }

        @Override
        public void unlock(long pid) {
            moves.add("unlock " + pid);
        }

        @Override
        public GpuProcessState state(long pid) {
            return state;
        }
    }

    @Test
    void theEngineLeavesTheGpuStepsToThePluginButStillFindsAndRefusesProcesses() throws Exception {
        Driver driver = new Driver();
        CriuPluginGpuCheckpointer gpu = new CriuPluginGpuCheckpointer(driver);

        gpu.lock(50, Duration.ofSeconds(10));
        gpu.checkpoint(50);
        gpu.restore(50);
        gpu.unlock(50);

        assertThat(driver.moves).isEmpty();
        assertThat(gpu.isCudaProcess(50)).isTrue();
        assertThat(gpu.isCudaProcess(60)).isFalse();
        driver.unsupported = "process 50 is a client of an NVIDIA MPS daemon";
        assertThatThrownBy(() -> gpu.checkSupported(50)).hasMessageContaining("MPS");
    }

    @Test
    void aProcessThePluginLeftLockedFailsTheRestoreWithAPointerToCriusLog() {
        Driver driver = new Driver();
        driver.state = GpuCheckpointer.GpuProcessState.CHECKPOINTED;
        CriuPluginGpuCheckpointer gpu = new CriuPluginGpuCheckpointer(driver);

        assertThatThrownBy(() -> gpu.restore(50)).isInstanceOf(GpuCheckpointException.class)
                .hasMessageContaining("left process 50 checkpointed").hasMessageContaining("restore.log");
        assertThat(driver.moves).isEmpty();
    }
}

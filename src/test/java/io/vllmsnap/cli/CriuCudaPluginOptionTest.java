package io.vllmsnap.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** --criu-cuda-plugin names a directory that must hold CRIU's CUDA plugin; anything else is a one-line error. */
class CriuCudaPluginOptionTest {
    @TempDir
    Path dir;

    private String errorOf(String... args) {
        CommandLine cl = VllmsnapCli.commandLine();
        StringWriter err = new StringWriter();
        cl.setErr(new PrintWriter(err, true));
        assertThat(cl.execute(args)).as(String.join(" ", args)).isEqualTo(1);
        return err.toString();
    }

    @Test
    void aDirectoryWithoutThePluginIsRefusedBeforeAnythingIsTouched() {
        String self = Long.toString(ProcessHandle.current().pid());

        assertThat(errorOf("snapshot", "--pid", self, "--out", dir.resolve("img").toString(), "--criu-cuda-plugin",
                dir.toString())).startsWith("vllmsnap: --criu-cuda-plugin: no cuda_plugin.so in " + dir);
        assertThat(dir.resolve("img")).doesNotExist();
        assertThat(errorOf("restore", dir.resolve("img").toString(), "--criu-cuda-plugin", dir.toString()))
                .startsWith("vllmsnap: --criu-cuda-plugin: no cuda_plugin.so in " + dir);
    }
}

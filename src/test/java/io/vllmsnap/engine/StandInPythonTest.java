package io.vllmsnap.engine;

import io.vllmsnap.criu.ChildProcess;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/** The stand-ins' Python unit tests (src/test/python: the GPU stand-in's safetensors index and copy plan). */
class StandInPythonTest {

    @Test
    void pythonUnitTestsPass() throws Exception {
        ChildProcess.Result r = ChildProcess.run(List.of("python3", "-m", "unittest", "discover", "-s",
                "src/test/python", "-p", "test_*.py", "-v"), Duration.ofMinutes(2));
        assertThat(r.exitCode()).as(r.output()).isZero();
        Matcher ran = Pattern.compile("Ran (\\d+) tests?").matcher(r.output());
        assertThat(ran.find()).as(r.output()).isTrue();
        assertThat(Integer.parseInt(ran.group(1))).as("tests found and run").isGreaterThanOrEqualTo(3);
    }
}

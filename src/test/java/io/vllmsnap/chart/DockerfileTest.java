package io.vllmsnap.chart;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The essentials of the two Dockerfiles, checked without a container engine (CI has none, and Debian bookworm has no
 * hadolint package): pinned bases, non-root operator, CRIU built in its own stage, no piped installers, no NVIDIA
 * binaries, lean apt use, and a build context that holds what they copy.
 */
class DockerfileTest {

    record Stage(String base, String name, List<String> instructions) {
    }

    private static final Pattern FROM = Pattern.compile("(?i)^FROM\\s+(?:--platform=\\S+\\s+)?(\\S+)(?:\\s+AS\\s+(\\S+))?\\s*$");

    static List<Stage> stages(String file) throws IOException {
        String text = Files.readString(ChartFiles.DOCKER.resolve(file)).replaceAll("\\\\\\n", " ");
        List<Stage> stages = new ArrayList<>();
        for (String line : text.lines().map(String::strip).toList()) {
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            Matcher from = FROM.matcher(line);
            if (from.matches()) {
                stages.add(new Stage(from.group(1), from.group(2), new ArrayList<>()));
            } else {
                assertThat(stages).as(file + ": instruction before FROM: " + line).isNotEmpty();
                stages.getLast().instructions().add(line);
            }
        }
        return stages;
    }

    static List<String> all(List<Stage> stages) {
        return stages.stream().flatMap(s -> s.instructions().stream()).toList();
    }

    @Test
    void baseImagesArePinnedToAVersion() throws IOException {
        for (String file : List.of("Dockerfile.operator", "Dockerfile.agent")) {
            List<Stage> stages = stages(file);
            List<String> stageNames = stages.stream().map(Stage::name).toList();
            for (Stage stage : stages) {
                if (stageNames.contains(stage.base())) {
                    continue;
                }
                assertThat(stage.base()).as(file).matches("[a-z0-9./_-]+(:[A-Za-z0-9._-]*[0-9][A-Za-z0-9._-]*|@sha256:[a-f0-9]{64})")
                        .doesNotEndWith(":latest");
                assertThat(stage.base()).as(file + ": no NVIDIA/CUDA base image").doesNotContainIgnoringCase("nvidia").doesNotContainIgnoringCase("cuda");
            }
        }
    }

    @Test
    void operatorRunsAsANonRootUser() throws IOException {
        Stage last = stages("Dockerfile.operator").getLast();
        List<String> users = last.instructions().stream().filter(i -> i.startsWith("USER ")).toList();
        assertThat(users).isNotEmpty();
        String user = users.getLast().substring(5).strip().split(":")[0];
        assertThat(user).isNotIn("0", "root").matches("[0-9]+");
        assertThat(Integer.parseInt(user)).isEqualTo(10001); // the runAsUser of the chart's operator Deployment
        assertThat(entrypoint(last)).contains("\"-Dquarkus.profile=operator\"");
    }

    @Test
    void agentBuildsCriuInASeparateStageWithTheProjectScriptAndShipsOnlyTheResult() throws IOException {
        List<Stage> stages = stages("Dockerfile.agent");
        assertThat(stages.size()).isGreaterThanOrEqualTo(2);
        Stage build = stages.stream().filter(s -> s.instructions().stream().anyMatch(i -> i.contains("hack/install-criu.sh")))
                .findFirst().orElseThrow(() -> new AssertionError("no stage runs hack/install-criu.sh"));
        Stage last = stages.getLast();
        assertThat(build).isNotSameAs(last);
        assertThat(last.instructions()).anyMatch(i -> i.startsWith("COPY --from=" + build.name()));
        assertThat(last.instructions()).noneMatch(i -> i.contains("build-essential") || i.contains("install-criu.sh"));
        assertThat(String.join("\n", build.instructions())).contains("cuda_plugin.so");
        assertThat(entrypoint(last)).contains("\"-Dquarkus.profile=agent\"");
    }

    @Test
    void noPipedInstallersNoRemoteAddsNoNvidiaBinaries() throws IOException {
        for (String file : List.of("Dockerfile.operator", "Dockerfile.agent")) {
            for (String i : all(stages(file))) {
                assertThat(i).as(file).doesNotContainPattern("(curl|wget)[^|]*\\|\\s*(ba|z|da)?sh")
                        .doesNotContainPattern("(?i)^ADD\\s+https?:")
                        .doesNotContainIgnoringCase("cuda-checkpoint")
                        .doesNotContainPattern("(?i)apt-get install[^&]*\\b(nvidia|cuda)");
            }
        }
    }

    @Test
    void aptInstallsAreLeanAndCleanUpInTheSameLayer() throws IOException {
        for (String file : List.of("Dockerfile.operator", "Dockerfile.agent")) {
            List<Stage> stages = stages(file);
            Stage last = stages.getLast();
            for (String i : last.instructions()) {
                if (i.contains("apt-get install")) {
                    assertThat(i).as(file).contains("--no-install-recommends").contains("-y")
                            .contains("rm -rf /var/lib/apt/lists/*").contains("apt-get update");
                }
            }
        }
    }

    @Test
    void buildContextHoldsWhatTheDockerfilesCopy() throws IOException {
        List<String> allowed = Files.readAllLines(ChartFiles.ROOT.resolve(".dockerignore")).stream()
                .filter(l -> l.startsWith("!")).map(l -> l.substring(1)).toList();
        for (String file : List.of("Dockerfile.operator", "Dockerfile.agent")) {
            for (String i : all(stages(file))) {
                if (!i.startsWith("COPY ") || i.contains("--from=")) {
                    continue;
                }
                String[] words = i.split("\\s+");
                for (int w = 1; w < words.length - 1; w++) {
                    if (words[w].startsWith("--")) {
                        continue;
                    }
                    String source = words[w];
                    assertThat(allowed).as(file + ": " + source + " is not in the build context (.dockerignore)")
                            .anyMatch(a -> source.startsWith(a) || Path.of(a).equals(Path.of(source)));
                }
            }
        }
    }

    /** The chart overrides the images' ENTRYPOINT; both must start the same jar, and the operator as the same user. */
    @Test
    void chartCommandsStartTheJarTheImagesHold() throws IOException {
        RenderedChart chart = Scenarios.defaults();
        var operatorPod = chart.operator().getSpec().getTemplate().getSpec();
        var agentPod = chart.agentDaemonSet().getSpec().getTemplate().getSpec();
        assertThat(entrypoint(stages("Dockerfile.operator").getLast()))
                .contains("\"" + operatorPod.getContainers().getFirst().getCommand().getLast() + "\"");
        assertThat(entrypoint(stages("Dockerfile.agent").getLast()))
                .contains("\"" + agentPod.getContainers().getFirst().getCommand().getLast() + "\"");
        String user = stages("Dockerfile.operator").getLast().instructions().stream().filter(i -> i.startsWith("USER "))
                .reduce((a, b) -> b).orElseThrow().substring(5).strip();
        assertThat(user).isEqualTo(operatorPod.getSecurityContext().getRunAsUser() + ":" + operatorPod.getSecurityContext().getRunAsGroup());
    }

    private static String entrypoint(Stage stage) {
        return stage.instructions().stream().filter(i -> i.startsWith("ENTRYPOINT ")).reduce((a, b) -> b)
                .orElseThrow(() -> new AssertionError("no ENTRYPOINT"));
    }
}

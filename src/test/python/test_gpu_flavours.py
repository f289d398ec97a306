"""CPU-side checks of the GPU stand-in's two flavours (no torch here): what a sleep and a wake do at each level, the
ordinary loader's name plan, and which command lines are refused before torch is loaded."""
import contextlib
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "main", "python", "vllmsnap_standin"))
import gpu_server  # noqa: E402


class SleepStepsTest(unittest.TestCase):
    def test_vllm_level1_keeps_weights_in_host_memory_and_drops_the_kv_pool(self):
        steps = gpu_server.sleep_steps("vllm", 1, trim=False)
        self.assertEqual(steps[:2], ["offload_weights", "discard_kv"])
        self.assertNotIn("discard_weights", steps)

    def test_vllm_level2_saves_buffers_before_it_discards_the_weights(self):
        steps = gpu_server.sleep_steps("vllm", 2, trim=False)
        self.assertLess(steps.index("save_buffers"), steps.index("discard_weights"))
        self.assertNotIn("offload_weights", steps)

    def test_vllm_keeps_freed_heap_and_cublas_workspaces_unless_trim_is_asked_for(self):
        for level in (1, 2):
            steps = gpu_server.sleep_steps("vllm", level, trim=False)
            self.assertNotIn("trim_host", steps)
            self.assertNotIn("clear_workspaces", steps)
            self.assertEqual(gpu_server.sleep_steps("vllm", level, trim=True)[-1], "trim_host")

    def test_register_flavour_frees_workspaces_and_trims_last(self):
        steps = gpu_server.sleep_steps("register", 2, trim=True)
        self.assertIn("clear_workspaces", steps)
        self.assertEqual(steps[-1], "trim_host")
        self.assertNotIn("save_buffers", steps)

    def test_bad_level_or_flavour_is_refused(self):
        for flavour, level in (("vllm", 0), ("vllm", 3), ("register", 0), ("sglang", 1)):
            with self.assertRaises(ValueError):
                gpu_server.sleep_steps(flavour, level, trim=False)
        with self.assertRaises(ValueError):
            gpu_server.wake_steps("vllm", 3)


class WakeStepsTest(unittest.TestCase):
    def test_vllm_level2_reloads_through_the_ordinary_loader_never_the_fast_one(self):
        steps = gpu_server.wake_steps("vllm", 2)
        self.assertIn("reload_ordinary", steps)
        self.assertNotIn("reload_fast", steps)
        # memory comes back first, then the saved buffers and weights go into it
        self.assertLess(steps.index("map_weights"), steps.index("reload_ordinary"))
        self.assertLess(steps.index("map_weights"), steps.index("restore_buffers"))

    def test_register_level2_wakes_through_its_own_loader(self):
        self.assertEqual(gpu_server.wake_steps("register", 2), ["reload_fast", "allocate_kv"])

    def test_level1_copies_the_backup_back_synchronously_in_vllm(self):
        self.assertEqual(gpu_server.wake_steps("vllm", 1), ["restore_weights_sync", "allocate_kv"])
        self.assertEqual(gpu_server.wake_steps("register", 1), ["restore_weights_async", "allocate_kv"])

    def test_every_step_has_a_method(self):
        for flavour in gpu_server.FLAVOURS:
            for level in (1, 2):
                for step in gpu_server.sleep_steps(flavour, level, True) + gpu_server.wake_steps(flavour, level):
                    self.assertTrue(callable(getattr(gpu_server.GpuModel, "_step_" + step, None)), step)


class OrdinaryLoadPlanTest(unittest.TestCase):
    def test_loads_every_parameter_by_name_and_ignores_the_rest(self):
        load, ignored = gpu_server.ordinary_load_plan(
            ["model.embed_tokens.weight", "model.norm.weight", "extra.rotary.inv_freq"],
            ["model.embed_tokens.weight", "model.norm.weight"])
        self.assertEqual(sorted(load), ["model.embed_tokens.weight", "model.norm.weight"])
        self.assertEqual(ignored, ["extra.rotary.inv_freq"])

    def test_a_parameter_no_file_fills_is_refused_by_name(self):
        with self.assertRaises(ValueError) as e:
            gpu_server.ordinary_load_plan(["model.embed_tokens.weight"], ["model.embed_tokens.weight",
                                                                          "lm_head.weight"])
        self.assertIn("lm_head.weight", str(e.exception))

    def test_a_tied_head_is_filled_through_the_embedding_it_shares(self):
        # torch lists a tied parameter once, under the embedding's name, which is the name the checkpoint stores
        load, _ = gpu_server.ordinary_load_plan(["model.embed_tokens.weight"], ["model.embed_tokens.weight"])
        self.assertEqual(load, ["model.embed_tokens.weight"])


class OptionsTest(unittest.TestCase):
    def parse(self, *argv):
        return gpu_server.parse_args(list(argv))

    def refused(self, *argv):
        err = io.StringIO()
        with self.assertRaises(SystemExit) as e, contextlib.redirect_stderr(err):
            self.parse(*argv)
        self.assertEqual(e.exception.code, 2)
        return err.getvalue()

    def test_vllm_is_the_default_flavour_and_loads_the_ordinary_way_without_trim(self):
        a = self.parse()
        self.assertEqual(a.flavour, "vllm")
        self.assertEqual(gpu_server.resolve_options(a.flavour, a.weight_loader, a.trim_on_sleep), ("ordinary", False))

    def test_register_flavour_defaults_to_its_loader_and_trims(self):
        a = self.parse("--flavour", "register")
        self.assertEqual(gpu_server.resolve_options(a.flavour, a.weight_loader, a.trim_on_sleep), ("register", True))
        a = self.parse("--flavour", "register", "--weight-loader", "staged", "--no-trim-on-sleep")
        self.assertEqual(gpu_server.resolve_options(a.flavour, a.weight_loader, a.trim_on_sleep), ("staged", False))

    def test_vllm_flavour_refuses_a_weight_loader(self):
        self.assertIn("ordinary", self.refused("--flavour", "vllm", "--weight-loader", "register"))

    def test_vllm_flavour_may_be_given_the_heap_trim_as_a_server_lever(self):
        a = self.parse("--trim-on-sleep")
        self.assertEqual(gpu_server.resolve_options(a.flavour, a.weight_loader, a.trim_on_sleep), ("ordinary", True))

    def test_unknown_flavour_and_bad_numbers_are_refused(self):
        self.refused("--flavour", "sglang")
        self.refused("--gpu-memory-utilization", "1.5")
        self.refused("--register-chunk-mib", "-1")

    def test_weights_dir_defaults_by_shape(self):
        self.assertEqual(self.parse("--shape", "tiny").weights_dir, "/var/tmp/vllmsnap-gpu/tiny")


if __name__ == "__main__":
    unittest.main()

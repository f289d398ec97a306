"""CPU-side checks of the GPU stand-in's weight loaders (no torch here): the safetensors index and the copy plan."""
import json
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "main", "python", "vllmsnap_standin"))
import gpu_server  # noqa: E402


def write_safetensors(path, tensors, pad_to=8):
    """tensors: name -> (dtype, shape, raw bytes); written as the format says, header padded with spaces."""
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % pad_to)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return 8 + len(text)


class SafetensorsIndexTest(unittest.TestCase):
    def test_offsets_point_at_each_tensors_bytes(self):
        tensors = {"a.weight": ("BF16", [2, 3], bytes(range(12))), "b.bias": ("F32", [4], bytes(range(100, 116))),
                   "c": ("I64", [1], b"\x07" * 8)}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.safetensors")
            base = write_safetensors(path, tensors)
            index, data_start = gpu_server.safetensors_index(path)
            self.assertEqual(data_start, base)
            self.assertNotIn("__metadata__", index)
            raw = open(path, "rb").read()
            for name, (dtype, shape, blob) in tensors.items():
                torch_dtype, got_shape, start, end = index[name]
                self.assertEqual(torch_dtype, gpu_server.SAFETENSORS_DTYPES[dtype])
                self.assertEqual(got_shape, shape)
                self.assertEqual(raw[start:end], blob, name)

    def test_unknown_dtype_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "odd.safetensors")
            write_safetensors(path, {"x": ("F8_E9M9", [1], b"\0")})
            with self.assertRaises(KeyError):
                gpu_server.safetensors_index(path)


class CopyPlanTest(unittest.TestCase):
    def test_pieces_cover_the_range_once_in_order(self):
        for start, end, chunk in [(8, 8 + 10 * 64, 64), (123, 10_000, 1000), (0, 5, 64), (40, 40, 64)]:
            plan = gpu_server.copy_plan(start, end, chunk)
            covered = start
            for a, b in plan:
                self.assertEqual(a, covered)
                self.assertGreater(b, a)
                self.assertLessEqual(b - a, chunk)
                covered = b
            self.assertEqual(covered, end if plan else start)
            self.assertEqual(sum(b - a for a, b in plan), end - start)


class RegisterPlanTest(unittest.TestCase):
    PAGE = 4096

    def check(self, base, size, register_chunk, copy_chunk):
        plan = gpu_server.register_plan(base, size, register_chunk, copy_chunk)
        copied = base
        for (ra, rb), copies in plan:
            self.assertEqual(ra % self.PAGE, 0, "a registration starts on a page")
            if register_chunk:
                self.assertLessEqual(rb - ra, register_chunk)
            for a, b in copies:
                self.assertEqual(a, copied, "tensor data is copied once, in order")
                self.assertTrue(ra <= a < b <= rb, "each copy reads only registered memory")
                self.assertLessEqual(b - a, copy_chunk)
                copied = b
        self.assertEqual(copied, size)
        return plan

    def test_pieces_register_every_byte_a_copy_reads_and_copy_all_tensor_data(self):
        mib = 1 << 20
        for base, size, reg in [(128, 3 * 1024 * mib + 77, 256 * mib), (8 + 4000, 10 * mib, 4 * mib),
                                (64, 5 * mib, 0), (4096 + 16, 4096 * 3, 4096)]:
            self.check(base, size, reg, 64 * mib)

    def test_whole_file_is_one_registration(self):
        plan = self.check(200, 1 << 30, 0, 64 << 20)
        self.assertEqual([r for r, _ in plan], [(0, 1 << 30)])

    def test_a_piece_holding_only_the_header_is_not_registered(self):
        plan = self.check(10_000, 20_000, 4096, 4096)
        self.assertEqual(plan[0][0], (8192, 12288))


if __name__ == "__main__":
    unittest.main()

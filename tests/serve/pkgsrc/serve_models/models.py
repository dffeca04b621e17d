"""Small models that exercise pyfleet-serve's protocol paths.

* Raiser: raises ValueError or KeyError depending on its input (the error reaches the
  client with its Python type and message).
* Sleeper: waits x[0] seconds in Python (interruptible at every bytecode, so a deadline
  frees its interpreter), then returns x * 2.
* AllTypes: one input and one output per protocol datatype (BOOL, UINT8, INT8, INT16,
  INT32, INT64, FP16, FP32, FP64), the outputs a dict.
"""
import time
from typing import Dict

import torch
from torch import nn


class Raiser(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = float(x[0, 0])
        if first < 0:
            raise ValueError("negative input: %.1f" % first)
        if first > 100:
            raise KeyError("too big")
        return x * 2


class Sleeper(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        end = time.monotonic() + float(x[0])
        while time.monotonic() < end:
            time.sleep(0.001)
        return x * 2


class AllTypes(nn.Module):
    def forward(self, b, u8, i8, i16, i32, i64, f16, f32, f64) -> Dict[str, torch.Tensor]:
        return {
            "not_b": ~b,
            "u8_plus_1": u8 + 1,
            "i8_minus_1": i8 - 1,
            "i16_times_2": i16 * 2,
            "i32_plus_7": i32 + 7,
            "i64_times_3": i64 * 3,
            "f16_times_2": f16 * 2,
            "f32_plus_half": f32 + 0.5,
            "f64_third": f64 / 3,
        }

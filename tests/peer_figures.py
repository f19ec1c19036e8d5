"""Totals printed by the real counting tools, measured once, for the tests to check the counting
conventions against when a tool is not installed (tests/test_conventions.py runs the real tools
when they are).

Measured on 2026-11-22 with Python 3.11, torch 2.13.0+cpu and these tool versions, on the
torchvision-layout models of tests/torch_models.py (eval mode, one 3×224×224 image, batch 1):

    fvcore     0.1.5.post20221221  FlopCountAnalysis(model, x).total()
    torchinfo  1.8.0               summary(model, input_size=(1, 3, 224, 224)).total_mult_adds
    ptflops    0.7.5               get_model_complexity_info(model, (3, 224, 224),
                                       as_strings=False)[0]   (default pytorch backend)
    thop       0.1.1.post2209072238  profile(model, inputs=(x,))[0]   (PyPI package "thop")
    torch      2.13.0              torch.utils.flop_counter.FlopCounterMode().get_total_flops()

The same numbers come out for the cnncalc torch backend's models of the zoo specs.
"""

TOOL_VERSIONS = {
    "fvcore": "0.1.5.post20221221",
    "torchinfo": "1.8.0",
    "ptflops": "0.7.5",
    "thop": "0.1.1.post2209072238",
    "torch": "2.13.0",
}

# parameters (torch numel) of the torchvision-layout models
PARAMS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "resnet152": 60_192_808,
    "vgg16": 138_357_544,
}

TOTALS = {
    "fvcore": {
        "resnet18": 1_819_065_856,
        "resnet50": 4_111_512_576,
        "resnet152": 11_558_835_200,
        "vgg16": 15_470_289_408,
    },
    "torchinfo": {
        "resnet18": 1_814_083_944,
        "resnet50": 4_089_238_376,
        "resnet152": 11_513_779_048,
        "vgg16": 15_483_821_032,
    },
    "ptflops": {
        "resnet18": 1_825_313_768,
        "resnet50": 4_132_436_968,
        "resnet152": 11_602_639_848,
        "vgg16": 15_523_225_576,
    },
    "thop": {
        "resnet18": 1_824_033_792,
        "resnet50": 4_133_742_592,
        "resnet152": 11_603_945_472,
        "vgg16": 15_470_314_496,
    },
    # FlopCounterMode counts 2 per multiply-add of conv and matmul: the `flops` convention
    "flops": {
        "resnet18": 3_628_146_688,
        "resnet50": 8_178_368_512,
        "resnet152": 23_027_253_248,
        "vgg16": 30_940_528_640,
    },
}

# fvcore's by_operator() breakdown (its operator names)
FVCORE_BY_OPERATOR = {
    "resnet18": {"conv": 1_813_561_344, "batch_norm": 4_967_424, "adaptive_avg_pool2d": 25_088,
                 "linear": 512_000},
    "resnet50": {"conv": 4_087_136_256, "batch_norm": 22_227_968, "adaptive_avg_pool2d": 100_352,
                 "linear": 2_048_000},
    "resnet152": {"conv": 11_511_578_624, "batch_norm": 45_108_224,
                  "adaptive_avg_pool2d": 100_352, "linear": 2_048_000},
    "vgg16": {"conv": 15_346_630_656, "adaptive_avg_pool2d": 25_088, "linear": 123_633_664},
}

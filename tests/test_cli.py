"""The checkpoint tools share --checkpoint / --data-dir through one argparse parent parser (capsnet.cli)."""
import pytest

from capsnet import atlas, equivariance, evaluate
from capsnet.cli import checkpoint_flags

TOOLS = {"evaluate": evaluate.main, "equivariance": equivariance.main, "atlas": atlas.main}


@pytest.mark.parametrize("name", TOOLS)
def test_every_tool_takes_the_shared_flags_with_their_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        TOOLS[name](["--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # help text as one line, whatever the terminal width
    assert out.startswith(f"usage: python -m capsnet.{name} [-h] [--checkpoint CHECKPOINT] [--data-dir DATA_DIR]")
    for action in checkpoint_flags()._actions:
        assert f"{action.option_strings[0]} {action.dest.upper()} {action.help}" in out


@pytest.mark.parametrize("name", TOOLS)
def test_an_unknown_flag_is_argparse_one_line_error(name, capsys):
    with pytest.raises(SystemExit) as e:
        TOOLS[name](["--checkpoint", "x.safetensors", "--bogus"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"python -m capsnet.{name}: error: unrecognized arguments: --bogus"


def test_the_shared_defaults_are_the_tools_defaults():
    from capsnet.data import DEFAULT_DATA_DIR

    args = checkpoint_flags().parse_args([])
    assert args.checkpoint is None and args.data_dir == DEFAULT_DATA_DIR
    assert checkpoint_flags().parse_args(["--data-dir", "d", "--checkpoint", "w.safetensors"]).data_dir == "d"

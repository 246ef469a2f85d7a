"""`python -m explorer.deploy SPACE_ID`: upload the app to a Hugging Face Space.

Why not `git push` or `gradio deploy`: the Hub refuses a push with a file over 10 MB that is not stored
through LFS/Xet, history included, and the 33 MB checkpoint sits in this repository's git history as a
plain blob. `HfApi.upload_folder` stores large files through LFS/Xet and sends no git history, so the
Hub accepts it. `gradio deploy` would use the front matter's title as the repo id and upload the whole
folder (data/, runs/ included). This uploads only the files the Space runs (DEPLOY_PATTERNS).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The Space's file set, matched by huggingface_hub (fnmatch on paths relative to ROOT; `*` crosses `/`).
README_IMAGES = ["docs/explorer.png"]  # shown by the README, which is the Space's page
DEPLOY_PATTERNS = ["app.py", "README.md", *README_IMAGES, "requirements.txt", "capsnet/**", "explorer/**",
                   "checkpoints/**"]
# ".*" and "*/.*" also cover what upload_folder always leaves out (.git, .cache/huggingface).
IGNORE_PATTERNS = ["*__pycache__*", "*.pyc", "*.resume.safetensors", "*.tmp", ".*", "*/.*"]
REQUIRED = ["app.py", "README.md", "requirements.txt", "checkpoints/capsnet.safetensors"]


class DeployError(Exception):
    """Bad input or a refusal: the message is one sentence for the user."""


def deploy_files(root: str | Path = ROOT) -> list[str]:
    """The files under `root` that upload_folder sends (same patterns, same matcher), as sorted posix paths."""
    from huggingface_hub.utils import filter_repo_objects

    root = Path(root).resolve()
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("**/*") if p.is_file())
    return list(filter_repo_objects(files, allow_patterns=DEPLOY_PATTERNS, ignore_patterns=IGNORE_PATTERNS))


def check(space_id: str, root: Path) -> list[str]:
    """The file set, after checking the Space id and that the files the Space needs are there."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(space_id)
    except HFValidationError:
        raise DeployError(f"{space_id!r} is not a Space id: write <user>/<name> with letters, digits, '-', '_' "
                          "or '.' (at most 96 characters).") from None  # fmt: skip
    files = deploy_files(root)
    missing = [f for f in REQUIRED if f not in files]
    if missing:
        raise DeployError(f"{root / missing[0]} is missing: the Space needs it (train the checkpoint with "
                          "`python -m capsnet.train`).")  # fmt: skip
    return files


def upload(space_id: str, root: Path, files: list[str], token: str | None, private: bool) -> None:
    """Create the Space if needed, then upload the file set (large files through LFS/Xet, no git history) and
    delete the Space's files under the same patterns that are no longer in it (a module renamed since)."""
    import httpx2  # huggingface_hub's HTTP client: its errors, and HfHubHTTPError, derive from httpx2.HTTPError
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    token = token or get_token()
    if not token:
        raise DeployError("No Hugging Face token: run `hf auth login` or set HF_TOKEN to a token with write access.")
    size = sum((root / f).stat().st_size for f in files)
    print(f"Uploading {len(files)} files ({size / 1e6:.1f} MB) to the Space {space_id} ...", flush=True)
    api = HfApi(token=token)
    try:
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private or None, exist_ok=True)
        api.upload_folder(folder_path=root, repo_id=space_id, repo_type="space", allow_patterns=DEPLOY_PATTERNS,
                          ignore_patterns=list(IGNORE_PATTERNS), delete_patterns=DEPLOY_PATTERNS,
                          commit_message="Deploy with python -m explorer.deploy")  # fmt: skip
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        hint = {401: " (the token is not valid)", 403: " (the token may not write to it)"}.get(status, "")
        raise DeployError(f"The Hub refused {space_id} with HTTP {status}{hint}.") from None
    except (httpx2.HTTPError, OSError) as e:  # no connection, DNS, timeouts, HF_HUB_OFFLINE
        raise DeployError(f"Could not reach the Hub ({type(e).__name__}: {str(e).splitlines()[0]}).") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m explorer.deploy",
                                description="Upload the explorer to a Hugging Face Space: only the files it runs.")
    p.add_argument("space_id", help="<user>/<name>, e.g. alice/capsnet-explorer")
    p.add_argument("--dry-run", action="store_true", help="list the files and their size; contact nothing")
    p.add_argument("--private", action="store_true", help="create the Space private (when it does not exist yet)")
    p.add_argument("--token", default=None, help="a write token (default: $HF_TOKEN or the `hf auth login` one)")
    args = p.parse_args(argv)
    try:
        files = check(args.space_id, ROOT)
        if args.dry_run:
            sizes = [(ROOT / f).stat().st_size for f in files]
            for f, size in zip(files, sizes):
                print(f"{size / 1e6:9.3f} MB  {f}")
            print(f"{len(files)} files, {sum(sizes) / 1e6:.1f} MB; dry run: nothing was uploaded.")
            return 0
        upload(args.space_id, ROOT, files, args.token, args.private)
    except DeployError as e:
        print(f"python -m explorer.deploy: {e}", file=sys.stderr)
        return 2
    print(f"Done: https://huggingface.co/spaces/{args.space_id} builds it now (its Logs tab shows the build).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from outreach.llm.sandbox import FAULTS, MODES, LlmSandboxServer


class Command(BaseCommand):
    help = "Run the local model sandbox (OpenAI-compatible Chat Completions) until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8767)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--mode", choices=MODES, default="echo")
        parser.add_argument("--fault", choices=[f for f in FAULTS if f], default="")
        parser.add_argument("--latency-ms", type=int, default=0)
        parser.add_argument(
            "--no-json-schema",
            action="store_true",
            help="refuse JSON-schema response_format with a 400, like some servers",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        server = LlmSandboxServer(
            options["host"],
            options["port"],
            mode=options["mode"],
            fault=options["fault"],
            latency_ms=options["latency_ms"],
            json_schema=not options["no_json_schema"],
        )
        server.start()
        self.stdout.write(
            f"Model sandbox ({options['mode']}) on {server.base_url} "
            "(set LLM_BASE_URL to it; control API under /__sandbox__/; Ctrl-C to stop)"
        )
        self.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stdout.write("Model sandbox stopped.")
        finally:
            server.stop()

"""OpenAPI schema naming: unique component names and operation ids, so that the schema is
unambiguous and `check --deploy` (which runs drf-spectacular's schema check) has no warnings."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema


class AutoSchema(BaseAutoSchema):
    def get_serializer_name(self, serializer, direction):  # noqa: ANN001, ANN201
        # HackSoft style nests `InputSerializer` / `OutputSerializer` in each API view: name them
        # after the view (PatientListCreateApi.InputSerializer -> PatientListCreateInput), or all
        # of them would be one "Input" component.
        cls = serializer.__class__
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            return outer.split(".")[-1].removesuffix("Api") + inner.removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)

    def get_operation_id(self) -> str:
        # A GET without path parameters is a collection read; DRF's APIView lists are not
        # recognised as lists by drf-spectacular and would collide with the detail GET.
        if self.method == "GET" and "{" not in self.path and not self._is_list_view():
            tokens = [t.replace("-", "_") for t in self._tokenize_path()] or ["root"]
            return "_".join([*tokens, "list"])
        return super().get_operation_id()

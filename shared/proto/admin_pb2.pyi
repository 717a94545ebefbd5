from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CreateTokensRequest(_message.Message):
    __slots__ = ("admin_credential", "count")
    ADMIN_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    admin_credential: str
    count: int
    def __init__(self, admin_credential: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class CreateTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tokens: _Optional[_Iterable[str]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("admin_credential", "token_or_client_id")
    ADMIN_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_OR_CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    admin_credential: str
    token_or_client_id: str
    def __init__(self, admin_credential: _Optional[str] = ..., token_or_client_id: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ("revoked",)
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    revoked: str
    def __init__(self, revoked: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("admin_credential",)
    ADMIN_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    admin_credential: str
    def __init__(self, admin_credential: _Optional[str] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("status_json",)
    STATUS_JSON_FIELD_NUMBER: _ClassVar[int]
    status_json: str
    def __init__(self, status_json: _Optional[str] = ...) -> None: ...

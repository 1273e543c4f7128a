# moto_server for the tests (test/support/moto.ts, .ci/run), with three of moto 5.2.1's departures from AWS put right
# and its transactions, sends and request handling made cheap
# (docs/emulator.md). Same arguments as moto_server; it refuses to start on another moto version.
#
# 1. A cancelled DynamoDB transaction loses other requests' writes. moto runs each request on a thread of its own;
#    TransactWriteItems deep-copies the tables it touches, applies item after item, and when a condition fails puts
#    the copies back in place of the tables: whatever another request wrote to them meanwhile is gone (stream
#    records too, and stream iterators handed out before read the discarded shard). The pipeline has its
#    transactions cancelled as a matter of course (a seen-message put finding the id, a version taken by another
#    writer). Here a transaction checks all its conditions first, as AWS does, and one that fails is cancelled
#    without touching anything; transactions and single writes take one lock, so that nothing is written between
#    the check and the apply (reads go on meanwhile). The items of one transaction are distinct (moto checks it), so
#    checking every condition first decides exactly what checking each before its write would.
#    moto also backs up every table a transaction touches with a deep copy, under that lock: 0.2 ms per item held,
#    so with a thousand seen messages each transaction took 200 ms and the grade function's batches overran their
#    15 s timeout on a busy machine. Here a transaction saves only the items it touches (and its tables' stream
#    lengths), and puts them back if it fails for a reason other than a condition (a malformed item).
# 2. A FIFO batch that times out in flight comes back last message first. moto holds a group back while any message
#    it delivered is in its pending set, and takes a message out of that set only when its receive loop reaches it:
#    the batch's first messages are skipped and its last one delivered (m4, then m0-m3, where SQS redelivers m0-m4
#    in order), and the grade would apply a patient's messages out of order. Here a message whose visibility timeout
#    has passed holds nothing: such messages leave the pending set before a receive looks at the queue, and one that
#    times out during a long poll does not hold its group meanwhile. And (2b) a visibility change of a message no
#    longer in flight is refused, as AWS refuses it: moto hid the message again without holding its group. (2c)
#    Receives, visibility changes and deletes take one lock: moto's request threads interleaved them, and a renewal
#    could hide a message whose group a receive had just taken as free (2026-12-07).
import copy
import importlib.metadata
import io
import logging
import os
import select
import selectors
import signal
import socket
import sys
import threading
import time
import types

import moto
import moto.backends as moto_backends
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import TransactionCanceledException
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.server import main
from moto.sqs.exceptions import ReceiptHandleIsInvalid, SQSException
from moto.sqs.models import Queue, SQSBackend
import werkzeug.serving as werkzeug_serving

if moto.__version__ != "5.2.1":
    sys.exit(f"test/support/moto-server.py patches moto 5.2.1, found {moto.__version__}: check the patches still apply")

# 1. DynamoDB transactions
writes = threading.RLock()


def locked(method, lock=writes):
    def run(self, *args, **kwargs):
        with lock:
            return method(self, *args, **kwargs)

    return run


for name in ("put_item", "update_item", "delete_item"):
    setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))

moto_transact = DynamoDBBackend.transact_write_items


def failed_conditions(backend, transact_items):
    """Each item's condition against the items as they are: (code, message, old item) or (None, None, None)."""
    reasons = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        condition = op.get("ConditionExpression")
        if condition is None:
            reasons.append((None, None, None))
            continue
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        current = backend.get_item(op["TableName"], key)
        check = get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        )
        if check.expr(current):
            reasons.append((None, None, None))
        else:
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
    return reasons


class NoTableCopies:
    """moto.dynamodb.models' `copy`, except that a table is not copied (its transaction backup, see save_items)."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


dynamodb_models.copy = NoTableCopies


def save_items(backend, transact_items):
    """What a failed transaction puts back: each item it touches as it is now, and each table's stream length."""
    items = []
    streams = {}
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.get_table(op["TableName"])
        key = op["Item"] if op_type == "Put" else op["Key"]
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        items.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        if table.stream_shard is not None:
            streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
    return items, list(streams.values())


def put_back(saved):
    items, streams = saved
    for table, hash_value, range_value, item in reversed(items):  # reversed: the first state of an item wins
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        elif item is None:
            table.items[hash_value].pop(range_value, None)
        else:
            table.items[hash_value][range_value] = item
    for shard, length in streams:
        del shard.items[length:]


def transact_write_items(self, transact_items):
    with writes:
        try:
            reasons = failed_conditions(self, transact_items)
            saved = save_items(self, transact_items)
        except Exception:
            # Keys that cannot be read: moto answers the request with its own error.
            reasons, saved = None, None
        if reasons and any(code is not None for code, _, _ in reasons):
            raise TransactionCanceledException(reasons)
        try:
            return moto_transact(self, transact_items)
        except Exception:
            if saved is not None:
                put_back(saved)
            raise


DynamoDBBackend.transact_write_items = transact_write_items


# 2. FIFO redelivery
def pending_message_groups(self):
    return {m.group_id for m in self._pending_messages if m.group_id is not None and not m.visible}


Queue.pending_message_groups = property(pending_message_groups)

moto_receive = SQSBackend.receive_message

# 2c. moto runs each request on a thread of its own, and a receive, a visibility change and a delete look at and
#     change the same messages without a lock: a renewal that found its message in flight (2b) and hid it again just
#     after a receive had taken the group as free (its message's timeout had passed) left the message hidden and its
#     group open, and the receive handed out the group's next message while the first was in flight: one patient's
#     messages graded out of order (reproduced step by step in test/support/moto-sqs-race.py). Here they take one
#     lock, as SQS's own are atomic; a long poll waits outside it.
queues = threading.RLock()


def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names=None):
    queue = self.get_queue(queue_name)
    end = time.monotonic() + (wait_seconds_timeout or 0)
    while True:
        with queues:
            for m in [m for m in queue._pending_messages if m.visible]:
                queue._pending_messages.discard(m)
            got = moto_receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
        left = end - time.monotonic()
        if got or left <= 0:
            return got
        if queue.messages:
            time.sleep(min(left, 0.02))  # visible messages, all of groups in flight: moto's own wait would spin
        else:
            queue.wait_for_messages(min(left, 1))


SQSBackend.receive_message = receive_message


# 2b. A visibility change of a message no longer in flight. AWS refuses it (MessageNotInflight): the message's
#     visibility timeout has passed, it may be received again, and its FIFO group is no longer held. moto hides it
#     again all the same, without holding its group: the group's next message was then delivered while this one was
#     hidden, and applied before it. The local host renews a batch's visibility while its invocation runs
#     (shared/hosts/aws-emulator/sqs-source.ts); on a busy machine a renewal can land after the timeout. The
#     conservation test's one failure of 2026-12-06 (a page under another sequence number) fits it (docs/emulator.md).
class MessageNotInflight(ReceiptHandleIsInvalid):
    def __init__(self):
        SQSException.__init__(self, "AWS.SimpleQueueService.MessageNotInflight", "The message is not in flight.")


moto_change_visibility = SQSBackend.change_message_visibility


def change_message_visibility(self, queue_name, receipt_handle, visibility_timeout):
    queue = self.get_queue(queue_name)
    for message in queue._messages:
        if message.had_receipt_handle(receipt_handle) and message.visible:
            raise MessageNotInflight()
    return moto_change_visibility(self, queue_name, receipt_handle, visibility_timeout)


SQSBackend.change_message_visibility = locked(change_message_visibility, queues)
SQSBackend.delete_message = locked(SQSBackend.delete_message, queues)

# 3. Per-request overheads: moto_server lists its own package directory (a stat of each of its ~200 entries) to find
#    each request's backend, under the lock every request takes, and werkzeug logs every request to stderr (a pipe
#    the tests read). A list made once, and request lines off (errors are still logged): aws-order.test.ts alone 69
#    to 59 s.
moto_modules = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: moto_modules
logging.getLogger("werkzeug").setLevel(logging.WARNING)

# 4. moto computes a queue's attributes whole (counting its messages three times over) each time one is read: a send
#    reads ContentBasedDeduplication four times (11 ms a send with a few hundred messages queued), GetQueueAttributes
#    reads each name asked for three times. Here one request computes them once: aws-order.test.ts 59 to 46 s.
in_request = threading.local()
moto_attributes = Queue.attributes.fget


def attributes(self):
    memo = getattr(in_request, "attributes", None)
    if memo is None:
        return moto_attributes(self)
    if id(self) not in memo:
        memo[id(self)] = moto_attributes(self)
    return memo[id(self)]


def attributes_once(method):
    def run(self, *args, **kwargs):
        if getattr(in_request, "attributes", None) is not None:
            return method(self, *args, **kwargs)
        in_request.attributes = {}
        try:
            return method(self, *args, **kwargs)
        finally:
            in_request.attributes = None

    return run


Queue.attributes = property(attributes)
for name in ("send_message", "send_message_batch", "get_queue_attributes"):
    setattr(SQSBackend, name, attributes_once(getattr(SQSBackend, name)))

# 5. werkzeug's development server closes the connection after every response ("Connection: close", whatever the
#    protocol version): every request of the SDK's clients was a new TCP connection, and a new thread here (an idle
#    `crs serve --backend aws` opened about 27 a second; its connects were a fifth of its CPU). It closes because,
#    after the application, it reads whatever is left on the socket, for 10 ms, to drain an unread body, which on a
#    kept-open connection would swallow the next request. Here each request's body is read whole before the
#    application runs (it sees the same bytes), so nothing is left to drain: the connection stays open for the
#    next request, unless the client asks to close it.
class KeepAliveRequestHandler(werkzeug_serving.WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response is written in several sends (headers, body): on a kept-open connection, Nagle's algorithm holds the
    # last one until the client's delayed acknowledgement (about 40 ms a request), which a close used to flush.
    disable_nagle_algorithm = True

    def make_environ(self):
        environ = super().make_environ()
        if environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read()  # chunked: read to its last chunk
        else:
            body = self.rfile.read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        return environ

    def send_header(self, keyword, value):
        # werkzeug's own "Connection: close"; a client's close (or HTTP/1.0) still closes (http.server's parse_request).
        if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
            return
        super().send_header(keyword, value)


class NoDrainSelector:
    """werkzeug's drain of the socket after each response: nothing is left to drain (the body was read whole)."""

    def register(self, *_):
        pass

    def select(self, timeout=None):
        return []

    def close(self):
        pass


if not importlib.metadata.version("werkzeug").startswith("3.1."):
    sys.exit("test/support/moto-server.py patches werkzeug 3.1's development server: check patch 5 still applies")
werkzeug_serving.selectors = types.SimpleNamespace(DefaultSelector=NoDrainSelector, EVENT_READ=selectors.EVENT_READ)
werkzeug_serving.WSGIRequestHandler = KeepAliveRequestHandler

# 6. Started with `-p 0`, the server takes a free port itself and says which (test/support/moto.ts reads it): a port
#    found free beforehand could be taken by another process before moto bound it (seen once in CI: "Address already
#    in use").
bind = werkzeug_serving.BaseWSGIServer.__init__


def bind_and_say(self, *args, **kwargs):
    bind(self, *args, **kwargs)
    print(f"moto-server.py: listening on port {self.server_address[1]}", file=sys.stderr, flush=True)


werkzeug_serving.BaseWSGIServer.__init__ = bind_and_say

# 7. A moto per test file, forked from one already loaded (`--zygote SOCKET WATCH_PID`, test/support/moto.ts): a
#    moto's imports and the first request of each service the tests use (botocore's service models, moto's Flask
#    apps) are about 1.5 s of CPU, paid once a run instead of once a file. Each connection to SOCKET gets a child of
#    its own: its standard error is the connection (the child's port and pid first, then whatever it logs), and it
#    ends when the connection does (the test file stopped it, or its worker died). The zygote ends when SOCKET is
#    removed (the run's directory, at the run's end) or WATCH_PID (the vitest run) has exited.
WARM_REQUESTS = (  # host, X-Amz-Target (JSON protocol) or None (query protocol), body
    ("dynamodb", "DynamoDB_20120810.ListTables", "{}"),
    ("streams.dynamodb", "DynamoDBStreams_20120810.ListStreams", "{}"),
    ("sqs", "AmazonSQS.ListQueues", "{}"),
    ("secretsmanager", "secretsmanager.ListSecrets", "{}"),
    ("sns", None, "Action=ListTopics&Version=2010-03-31"),
    ("monitoring", None, "Action=ListMetrics&Version=2010-08-01"),
)


def warmed_app():
    from moto.moto_server.threaded_moto_server import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    client = Client(app)
    for host, target, body in WARM_REQUESTS:
        json = target is not None
        response = client.post(
            "/",
            base_url=f"http://{host}.us-east-1.amazonaws.com",
            data=body,
            headers={"X-Amz-Target": target} if json else {},
            content_type="application/x-amz-json-1.0" if json else "application/x-www-form-urlencoded",
        )
        if response.status_code != 200:
            sys.exit(f"moto-server.py: warming {host} answered {response.status_code}: {response.get_data()[:300]}")
    return app


def serve_child(conn, app):
    os.dup2(conn.fileno(), 2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    print(f"moto-server.py: pid {os.getpid()}", file=sys.stderr, flush=True)

    def end_with_connection():
        while conn.recv(4096):
            pass
        os._exit(0)

    threading.Thread(target=end_with_connection, daemon=True).start()
    os.environ["MOTO_PORT"] = "0"
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    werkzeug_serving.run_simple("127.0.0.1", 0, app, threaded=True)
    os._exit(0)


def zygote(socket_path, watch_pid):
    app = warmed_app()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(f"{socket_path}.{os.getpid()}")
    listener.listen(64)
    os.rename(f"{socket_path}.{os.getpid()}", socket_path)  # there once it accepts
    print("moto-server.py: zygote ready", file=sys.stderr, flush=True)
    while True:
        ready, _, _ = select.select([listener], [], [], 1.0)
        if not ready:
            if not os.path.exists(socket_path):
                return
            try:
                os.kill(watch_pid, 0)
            except ProcessLookupError:
                return
            continue
        conn, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            serve_child(conn, app)
        conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        zygote(sys.argv[2], int(sys.argv[3]))
    else:
        main(sys.argv[1:])

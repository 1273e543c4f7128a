# One interleaving of moto's request threads, forced step by step (aws-emulator-fidelity.test.ts runs it): a renewal of
# a FIFO message's visibility that found the message in flight, a receive that looks at the queue's groups, and the
# message's visibility timeout passing in between. Imports the moto server module given (test/support/moto-server.py)
# and drives its SQS backend in this process. Prints what the receive got: the group's first message and then its
# second (its timeout had passed: "m0 m1"), or nothing (the renewal came first: "-"). "m1" alone is the group's
# second message handed out while the first is in flight again: moto 5.2.1 with moto-server.py before 2026-12-07.
import importlib.util
import sys
import threading
import time

spec = importlib.util.spec_from_file_location("moto_server", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)

from moto.sqs.models import Message, Queue, sqs_backends  # noqa: E402 (after the patches)

sqs = sqs_backends["123456789012"]["us-east-1"]
sqs.create_queue("race.fifo", FifoQueue="true", VisibilityTimeout="1")
sqs.send_message("race.fifo", "m0", group_id="P", deduplication_id="d0")
sqs.send_message("race.fifo", "m1", group_id="P", deduplication_id="d1")
first = sqs.receive_message("race.fifo", 1, 0, 1)
assert [m.body for m in first] == ["m0"], [m.body for m in first]

# Each side waits for the other at most half a second: where a lock keeps them apart, they run one after the other.
checked, looked, renewed = threading.Event(), threading.Event(), threading.Event()
change_visibility = Message.change_visibility


def renew_late(self, timeout):
    checked.set()  # the renewal found the message in flight (2b) ...
    looked.wait(0.5)  # ... and hides it again once a receive has taken the groups in flight
    change_visibility(self, timeout)
    renewed.set()


pending_groups = Queue.pending_message_groups.fget


def groups_then_wait(self):
    groups = pending_groups(self)
    if threading.current_thread().name == "receive":
        looked.set()
        renewed.wait(0.5)
    return groups


Message.change_visibility = renew_late
Queue.pending_message_groups = property(groups_then_wait)

renewal = threading.Thread(
    name="renew", target=lambda: sqs.change_message_visibility("race.fifo", first[0].receipt_handle, 30)
)
renewal.start()
checked.wait(2)
sqs.get_queue("race.fifo")._messages[0].visible_at = time.time() * 1000 - 10  # its visibility timeout passes
got = []
receive = threading.Thread(name="receive", target=lambda: got.extend(sqs.receive_message("race.fifo", 10, 0, 1)))
receive.start()
renewal.join()
receive.join()
print(" ".join(m.body for m in got) or "-")

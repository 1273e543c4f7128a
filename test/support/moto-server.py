# moto_server for the tests (test/support/moto.ts, .ci/run), with moto 5.2.1's FIFO redelivery put right.
#
# moto holds a FIFO message group back while any message it delivered is in its pending set, and takes a message out
# of that set only when its receive loop reaches it. When a batch of one group times out in flight (a consumer
# killed, or slower than the visibility timeout), the loop skips the batch's first messages (the later ones, still
# pending, hold the group) and delivers its last one first: m4, then m0-m3, where SQS redelivers m0-m4 in order. The
# grade function would apply a patient's messages out of order. Here a message whose visibility timeout has passed
# no longer holds its group, as on SQS: such messages leave the pending set before a receive looks at the queue (so
# the batch comes back whole, in order), and, should one time out during a long poll, it holds nothing meanwhile.
# Same arguments as moto_server.
import sys

import moto
from moto.server import main
from moto.sqs.models import Queue, SQSBackend

if moto.__version__ != "5.2.1":
    sys.exit(f"test/support/moto-server.py patches moto 5.2.1, found {moto.__version__}: check the patch still applies")


def pending_message_groups(self):
    return {m.group_id for m in self._pending_messages if m.group_id is not None and not m.visible}


Queue.pending_message_groups = property(pending_message_groups)

moto_receive = SQSBackend.receive_message


def receive_message(self, queue_name, *args, **kwargs):
    queue = self.get_queue(queue_name)
    for m in [m for m in queue._pending_messages if m.visible]:
        queue._pending_messages.discard(m)
    return moto_receive(self, queue_name, *args, **kwargs)


SQSBackend.receive_message = receive_message

if __name__ == "__main__":
    main(sys.argv[1:])

using PushService.Broker;
using PushService.Gateway.Configuration;

namespace PushService.Gateway.Hub;

/// <summary>
/// One connection's subscription to one channel. It starts pending: while the subscribe command reads the channel's
/// position and history, live publications are buffered here, then sent after the reply so the client sees a
/// gap-free, duplicate-free sequence. Once live, delivery is a compare and an enqueue.
/// </summary>
internal sealed class Subscription
{
    private readonly object _gate = new();
    private readonly Outbox _outbox;
    private List<(Publication Publication, byte[] Frame)>? _pending = [];
    private volatile bool _live;
    private long _offset;
    private string? _epoch;

    public Subscription(Subscriber connection, string channel)
    {
        Connection = connection;
        Channel = channel;
        _outbox = connection.Outbox;
    }

    public Subscriber Connection { get; }

    /// <summary>True once the subscribe reply went out; pushes other than messages wait for it.</summary>
    public bool IsLive => _live;

    /// <summary>When the subscription token expires (UTC ticks); 0 when there is none.</summary>
    public long ExpiresAtTicks { get; init; }

    /// <summary>The options of the channel's namespace (presence, join and leave).</summary>
    public required NamespaceOptions Namespace { get; init; }

    public string Channel { get; }

    /// <summary>Where it sits in its channel's <see cref="SubscriberSet"/>; -1 when it is in none.</summary>
    internal int Slot { get; set; } = -1;

    /// <summary>Delivers a publication, on the broker's dispatch path; never waits.</summary>
    public void Deliver(Publication publication, byte[] frame)
    {
        if (!_live)
        {
            lock (_gate)
            {
                if (!_live)
                {
                    _pending?.Add((publication, frame));
                    return;
                }
            }
        }

        SendIfNew(publication, frame);
    }

    /// <summary>
    /// Sends the subscribe reply, then what arrived while pending and is newer than <paramref name="position"/>,
    /// and makes the subscription live.
    /// </summary>
    public void Activate(StreamPosition position, byte[]? reply)
    {
        lock (_gate)
        {
            _offset = position.Offset;
            _epoch = position.Epoch;
            if (reply is not null)
            {
                _outbox.EnqueueReply(reply);
            }

            foreach (var (publication, frame) in _pending!)
            {
                SendIfNew(publication, frame);
            }

            _pending = null;
            _live = true;
        }

        // Outside the lock: the flush may write to the socket, and the dispatch path may be waiting on the lock.
        if (reply is not null)
        {
            _outbox.FlushNow();
        }
    }

    private void SendIfNew(Publication publication, byte[] frame)
    {
        // Only the dispatch path calls this once live (and Activate before that), so no lock is needed.
        if (string.Equals(publication.Epoch, _epoch, StringComparison.Ordinal))
        {
            if (publication.Offset <= _offset)
            {
                return;
            }
        }

        if (!ReferenceEquals(publication.Epoch, _epoch))
        {
            // A new epoch, or the same one in the string the broker reuses for the channel: the next check is then a
            // reference comparison.
            _epoch = publication.Epoch;
        }

        _offset = publication.Offset;
        _outbox.Send(frame, publication.AcceptedAtTicks);
    }
}

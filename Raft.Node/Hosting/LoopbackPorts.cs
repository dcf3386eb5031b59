using System.Net;
using System.Net.Sockets;

namespace Raft.Node.Hosting;

/// <summary>
/// Free loopback ports for nodes started by this process (the embedded cluster, tests, benchmarks). Asking the OS for
/// port 0 returns an ephemeral port, which an outgoing connection may take before the node binds it ("address already
/// in use"); these come from below the ephemeral range instead, never the same one twice in a process, each checked free.
/// </summary>
public static class LoopbackPorts
{
    private const int First = 20_000;
    private const int Last = 32_000; // Linux's ephemeral range starts at 32768
    private static int s_next = First + Random.Shared.Next(Last - First);

    public static int Next()
    {
        for (int attempt = 0; attempt < Last - First; attempt++)
        {
            int port = First + (Interlocked.Increment(ref s_next) % (Last - First));
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // taken: try the next
            }
        }
        throw new InvalidOperationException($"no free loopback port between {First} and {Last}");
    }
}

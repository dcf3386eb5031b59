using System.Buffers.Binary;
using System.Numerics;

namespace Raft.Engine.Storage;

/// <summary>CRC-32C (Castagnoli), with the CPU's instruction where it has one: the checksum of stored records.</summary>
public static class Crc32C
{
    /// <summary>The checksum of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(~0u, data);

    /// <summary>Continues a running (not yet inverted) checksum with <paramref name="data"/>.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }
        return crc;
    }

    /// <summary>Continues a running checksum with a number (its 8 little-endian bytes).</summary>
    public static uint Append(uint crc, long value) => BitOperations.Crc32C(crc, (ulong)value);
}

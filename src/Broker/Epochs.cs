using System.Security.Cryptography;

namespace PushService.Broker;

/// <summary>Makes epoch identifiers: short, random, URL-safe.</summary>
public static class Epochs
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>A new random epoch of 8 characters (40 bits), enough that a reset stream never reuses one.</summary>
    public static string New()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return string.Create(8, bytes.ToArray(), static (chars, b) =>
        {
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = Alphabet[b[i] & 31];
            }
        });
    }
}

namespace PushService.Broker;

/// <summary>Makes epoch identifiers: short, random, URL-safe.</summary>
public static class Epochs
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>A new random epoch of 8 characters (40 bits), enough that a reset stream never reuses one.</summary>
    /// <remarks>
    /// Every publish carries a candidate epoch (used only if it creates its stream), so this runs once per publication.
    /// The shared generator, seeded from the system's randomness, costs nanoseconds; the cryptographic one cost a call
    /// into OpenSSL and a <c>getpid</c> system call each time (its fork check), one of a publication's few dozen system
    /// calls. An epoch must not repeat; it is no secret (every subscriber is told it), so predictability costs nothing.
    /// </remarks>
    public static string New() => string.Create(8, Random.Shared.NextInt64(), static (chars, bits) =>
    {
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = Alphabet[(int)(bits >> (5 * i)) & 31];
        }
    });
}
